from __future__ import annotations

import pytest

from services.cost.budgets import BudgetSpec, apply_mask, etag, validate
from services.platform.errors import InvalidArgument

TENANT = BudgetSpec("", 1, "", 2, 1000, 0, (50, 100))


def test_valid_tenant_budget_passes() -> None:
    validate(TENANT)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (BudgetSpec("", 0, "", 2, 1, 0, ()), "budget.scope_kind"),
        (BudgetSpec("", 1, "x", 2, 1, 0, ()), "budget.scope_id"),
        (BudgetSpec("", 2, "", 2, 1, 0, ()), "budget.scope_id"),
        (BudgetSpec("", 4, "not-a-task", 2, 1, 0, ()), "budget.scope_id"),
        (BudgetSpec("", 1, "", 0, 1, 0, ()), "budget.period"),
        (BudgetSpec("", 1, "", 2, 0, 0, ()), "budget.hard_limit_micros"),
        (BudgetSpec("", 1, "", 2, 10, 20, ()), "budget.soft_limit_micros"),
    ],
)
def test_invalid_budgets_name_the_field(spec: BudgetSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(spec)
    assert field in [v.field for v in caught.value.violations]


def test_mask_copies_only_named_fields() -> None:
    new = BudgetSpec("renamed", 1, "", 1, 5, 0, (80,))
    merged = apply_mask(TENANT, new, ["display_name", "alert_thresholds_percent"])
    assert merged == BudgetSpec("renamed", 1, "", 2, 1000, 0, (80,))


def test_star_mask_copies_every_updatable_field_but_not_the_scope() -> None:
    new = BudgetSpec("x", 2, "bob", 1, 5, 1, ())
    assert apply_mask(TENANT, new, ["*"]) == BudgetSpec("x", 1, "", 1, 5, 1, ())


@pytest.mark.parametrize("paths", [[], ["scope_kind"], ["spent_micros"], ["*", "period"]])
def test_bad_masks_are_invalid(paths: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        apply_mask(TENANT, TENANT, paths)


def test_etag_changes_with_revision() -> None:
    assert etag("b", 1) != etag("b", 2)
    assert etag("b", 1) == etag("b", 1)

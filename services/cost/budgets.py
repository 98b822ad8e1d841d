"""Budget rules: what a valid budget is, how an update mask applies (AIP-134),
etags, and which budgets apply to a call. No I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from services.platform.errors import FieldViolation, InvalidArgument

SCOPE_TENANT, SCOPE_USER, SCOPE_API_KEY, SCOPE_TASK = 1, 2, 3, 4
TASK_NAME = re.compile(r"^tasks/[a-z0-9][a-z0-9-]{0,62}$")
UPDATABLE = (
    "display_name",
    "period",
    "hard_limit_micros",
    "soft_limit_micros",
    "alert_thresholds_percent",
)
IMMUTABLE = ("scope_kind", "scope_id")
OUTPUT_ONLY = (
    "name",
    "spent_micros",
    "reserved_micros",
    "period_start_time",
    "create_time",
    "update_time",
    "etag",
)


@dataclass(frozen=True)
class BudgetSpec:
    """The configurable part of a budget."""

    display_name: str
    scope_kind: int
    scope_id: str
    period: int
    hard_limit_micros: int
    soft_limit_micros: int
    alert_thresholds: tuple[int, ...]


def validate(spec: BudgetSpec, prefix: str = "budget") -> None:
    """Raises InvalidArgument naming every bad field."""
    bad: list[FieldViolation] = []
    if spec.scope_kind not in (SCOPE_TENANT, SCOPE_USER, SCOPE_API_KEY, SCOPE_TASK):
        bad.append(FieldViolation(f"{prefix}.scope_kind", "scope_kind is required"))
    elif spec.scope_kind == SCOPE_TENANT and spec.scope_id:
        bad.append(FieldViolation(f"{prefix}.scope_id", "must be empty for a tenant budget"))
    elif spec.scope_kind != SCOPE_TENANT and not spec.scope_id:
        bad.append(FieldViolation(f"{prefix}.scope_id", "required for user, API key and task"))
    elif spec.scope_kind == SCOPE_TASK and not TASK_NAME.match(spec.scope_id):
        bad.append(FieldViolation(f"{prefix}.scope_id", "a task budget's scope_id is tasks/{id}"))
    if spec.period not in (1, 2, 3):
        bad.append(FieldViolation(f"{prefix}.period", "period is required"))
    if spec.hard_limit_micros == 0 and spec.soft_limit_micros == 0:
        bad.append(
            FieldViolation(f"{prefix}.hard_limit_micros", "set a hard or a soft limit (or both)")
        )
    if 0 < spec.hard_limit_micros < spec.soft_limit_micros:
        bad.append(
            FieldViolation(f"{prefix}.soft_limit_micros", "must not exceed hard_limit_micros")
        )
    if bad:
        raise InvalidArgument("; ".join(f"{v.field}: {v.description}" for v in bad), bad)


def apply_mask(current: BudgetSpec, new: BudgetSpec, paths: Sequence[str]) -> BudgetSpec:
    """`current` with the masked fields taken from `new` (`*` = every updatable one)."""
    if not paths:
        raise InvalidArgument.for_field("update_mask", "name at least one field, or `*`")
    if "*" in paths:
        if len(paths) > 1:
            raise InvalidArgument.for_field("update_mask", "`*` cannot be combined with fields")
        paths = UPDATABLE
    changes: dict[str, object] = {}
    for path in paths:
        if path in IMMUTABLE:
            raise InvalidArgument.for_field("update_mask", f"{path} is immutable")
        if path not in UPDATABLE:
            raise InvalidArgument.for_field("update_mask", f"unknown or output-only field {path!r}")
        attribute = "alert_thresholds" if path == "alert_thresholds_percent" else path
        changes[attribute] = getattr(new, attribute)
    return replace(current, **changes)  # type: ignore[arg-type]


def etag(budget_id: str, revision: int) -> str:
    return hashlib.sha256(f"{budget_id}:{revision}".encode()).hexdigest()[:16]

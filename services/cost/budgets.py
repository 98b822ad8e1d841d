"""Budget rules: what a valid budget is, how an update mask applies (AIP-134),
etags, and which budgets apply to a call. No I/O."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from protomesh.cost.v1 import cost_service_pb2 as pb
from services.platform.errors import FieldViolation, InvalidArgument
from services.platform.fieldmask import UpdateRules

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


UPDATE_RULES = UpdateRules(pb.Budget, UPDATABLE, IMMUTABLE)


def apply_mask(
    current: BudgetSpec, new: BudgetSpec, paths: Sequence[str], sent: pb.Budget | None = None
) -> BudgetSpec:
    """`current` with the masked fields taken from `new` (AIP-134,
    `services.platform.fieldmask`: no paths = the fields populated in `sent`,
    `*` = every updatable one). An immutable field `sent` populated must keep its value."""
    update = UPDATE_RULES.resolve(paths, sent)
    changed = [
        name for name in sorted(update.immutable) if getattr(new, name) != getattr(current, name)
    ]
    if changed:
        violations = [FieldViolation(f"budget.{name}", "is immutable") for name in changed]
        raise InvalidArgument(
            "; ".join(f"{v.field} {v.description}" for v in violations), violations
        )
    changes: dict[str, object] = {}
    for path in update.fields:
        attribute = "alert_thresholds" if path == "alert_thresholds_percent" else path
        changes[attribute] = getattr(new, attribute)
    return replace(current, **changes)  # type: ignore[arg-type]


def etag(budget_id: str, revision: int) -> str:
    return hashlib.sha256(f"{budget_id}:{revision}".encode()).hexdigest()[:16]

"""CostService domain metrics (RED per RPC comes from the platform)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge

from services.cost.tiers import TIER_BUDGET_ID

MODEL_TOKENS = Counter(
    "protomesh_model_tokens_total",
    "Tokens metered (recorded or committed usage), by model and direction.",
    ["model", "direction"],
)
MODEL_COST = Counter(
    "protomesh_model_cost_micros_total",
    "Spend metered, in micro-units of the price book's currency, by model.",
    ["model"],
)
BUDGET_REJECTIONS = Counter(
    "protomesh_budget_rejections_total",
    "Reservations refused because a hard budget limit had no room, by which budget: "
    "tier (the tenant's tier cap) or budget (one the tenant set).",
    ["scope"],
)
RESERVATIONS_OUTSTANDING = Gauge(
    "protomesh_reservations_outstanding",
    "Reservations held and not yet lapsed, across tenants (sampled by the sweeper).",
)


def rejection_scope(budget_id: str) -> str:
    """The bounded `scope` label of a refused reservation's budget."""
    return "tier" if budget_id == TIER_BUDGET_ID else "budget"


def metered(usage: Mapping[str, Any]) -> None:
    """Counts one newly written usage record (a stored row of cost.usage)."""
    model = str(usage["model"])
    MODEL_TOKENS.labels(model, "input").inc(int(usage.get("input_tokens") or 0))
    MODEL_TOKENS.labels(model, "output").inc(int(usage.get("output_tokens") or 0))
    MODEL_COST.labels(model).inc(int(usage.get("amount_micros") or 0))

"""Tenant tiers: what a tier grants (a monthly tenant budget and a request rate).

The defaults follow the seed (free / pro / enterprise: $0.50 / $25 / $500 per
month, 10 / 100 / 1,000 requests per minute per rate-limit class); pass another
mapping to `services.cost.service.make_spec(tiers=...)` to change them.

A tenant without a tier row has no tier: its calls are not rate limited and no
tier budget applies (a deliberate choice, so development and the test suite are
never throttled by accident). Setting a tier (UpdateTenantTier) both starts rate
limiting and creates or updates the tenant's monthly hard budget `budgets/tier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    name: str
    monthly_budget_micros: int
    requests_per_minute: int


DEFAULT_TIERS: Mapping[str, Tier] = {
    "free": Tier("free", 500_000, 10),
    "pro": Tier("pro", 25_000_000, 100),
    "enterprise": Tier("enterprise", 500_000_000, 1000),
}

TIER_BUDGET_ID = "tier"
TIER_ALERT_THRESHOLDS = (50, 80, 100)


def tier_named(name: str, tiers: Mapping[str, Tier] = DEFAULT_TIERS) -> Tier:
    try:
        return tiers[name]
    except KeyError:
        raise ValueError(f"unknown tier {name!r}; one of {', '.join(sorted(tiers))}") from None

from __future__ import annotations

import pytest

from services.cost.ratelimit import TierRateLimiter
from services.cost.tiers import DEFAULT_TIERS, tier_named
from services.platform.errors import ResourceExhausted


async def _no_tiers() -> dict[str, str]:
    return {}


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_seed_tiers() -> None:
    assert tier_named("free").monthly_budget_micros == 500_000
    assert tier_named("pro").monthly_budget_micros == 25_000_000
    assert tier_named("enterprise").monthly_budget_micros == 500_000_000
    assert [DEFAULT_TIERS[n].requests_per_minute for n in ("free", "pro", "enterprise")] == [
        10,
        100,
        1000,
    ]


def test_tenant_without_a_tier_is_not_limited() -> None:
    limiter = TierRateLimiter(_no_tiers)
    for _ in range(10_000):
        limiter.check("anyone", 1)


def test_free_tier_allows_a_minute_of_burst_then_refills() -> None:
    clock = FakeMonotonic()
    limiter = TierRateLimiter(_no_tiers, clock=clock)
    limiter.set_tier("t", "free")
    for _ in range(10):
        limiter.check("t", 1)
    with pytest.raises(ResourceExhausted) as caught:
        limiter.check("t", 1)
    assert caught.value.retry_after_seconds == pytest.approx(6.0)
    limiter.check("t", 2)  # another rate-limit class has its own bucket
    clock.now += 6.0
    limiter.check("t", 1)
    with pytest.raises(ResourceExhausted):
        limiter.check("t", 1)


def test_buckets_of_tenants_gone_quiet_are_forgotten() -> None:
    clock = FakeMonotonic()
    limiter = TierRateLimiter(_no_tiers, clock=clock)
    for tenant in range(50):
        limiter.set_tier(f"t{tenant}", "free")
        limiter.check(f"t{tenant}", 1)
    assert len(limiter._buckets) == 50
    clock.now += 60.0  # a free bucket refills in a minute
    limiter._buckets.sweep(clock.now)
    assert len(limiter._buckets) == 0

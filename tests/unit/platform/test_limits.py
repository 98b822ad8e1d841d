"""Per-tenant token buckets and in-flight caps, with a clock the test moves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.platform.errors import ResourceExhausted
from services.platform.identity import SERVICE_TENANT
from services.platform.limits import (
    SWEEP_EVERY_CHECKS,
    LimitConfig,
    TenantLimits,
    TokenBuckets,
    parse_rates,
)

READ, WRITE, SEARCH = 1, 2, 3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(
    clock: Clock, rates: str = "read=60,write=6", burst: float = 10.0, in_flight: int = 2
) -> TenantLimits:
    return TenantLimits(LimitConfig(parse_rates(rates), burst, in_flight), "test", clock)


def test_a_bucket_allows_its_burst_then_sheds_with_the_time_to_the_next_token() -> None:
    clock = Clock()
    limiter = limits(clock)  # read: 1/s, burst 10

    for _ in range(10):
        limiter.check("t1", READ)
    with pytest.raises(ResourceExhausted) as refused:
        limiter.check("t1", READ)

    assert refused.value.retry_after_seconds == pytest.approx(1.0)
    assert refused.value.violations[0].subject == "tenants/t1"
    assert "read: 60 calls per minute" in refused.value.violations[0].description
    clock.now += 1.0
    limiter.check("t1", READ)  # one token refilled


def test_tenants_and_classes_have_buckets_of_their_own() -> None:
    clock = Clock()
    limiter = limits(clock)
    for _ in range(10):
        limiter.check("noisy", READ)

    limiter.check("quiet", READ)
    limiter.check("noisy", WRITE)
    limiter.check("noisy", SEARCH)  # not configured: unlimited
    limiter.check(SERVICE_TENANT, READ)


def test_full_buckets_are_forgotten() -> None:
    clock = Clock()
    limiter = limits(clock)
    for tenant in range(100):
        limiter.check(f"t{tenant}", READ)
    clock.now += 3600
    limiter._buckets.sweep(clock.now)

    assert limiter.tracked_buckets == 0


def test_the_in_flight_cap_sheds_and_releases_once() -> None:
    limiter = limits(Clock(), in_flight=2)
    first, second = limiter.enter("t1"), limiter.enter("t1")

    with pytest.raises(ResourceExhausted, match="2 calls in flight"):
        limiter.enter("t1")
    limiter.enter("t2")()  # another tenant is not affected
    first()
    first()  # idempotent
    assert limiter.in_flight("t1") == 1
    limiter.enter("t1")
    second()


@pytest.mark.parametrize("spec", ["read", "read=x", "reads=1", "read=-1"])
def test_bad_rate_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_rates(spec)


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=200))
def test_admitted_calls_never_exceed_burst_plus_refill(gaps: list[float]) -> None:
    clock = Clock()
    limiter = limits(clock, rates="read=60", burst=5.0)  # 1/s, burst 5
    admitted = 0
    for gap in gaps:
        clock.now += gap
        try:
            limiter.check("t", READ)
            admitted += 1
        except ResourceExhausted:
            pass
    assert admitted <= 5 + sum(gaps) + 1e-9


def test_token_buckets_sweep_on_their_own_every_so_many_takes() -> None:
    clock = Clock()
    buckets: TokenBuckets[str] = TokenBuckets(clock)
    for i in range(100):
        assert buckets.take(f"k{i}", rate=1.0, capacity=2.0) == 0.0
    clock.now += 10
    for _ in range(SWEEP_EVERY_CHECKS - 100 - 1):
        buckets.take("busy", rate=1e9, capacity=1e9)
    assert len(buckets) == 101
    buckets.take("busy", rate=1e9, capacity=1e9)  # the sweeping take
    assert len(buckets) == 1

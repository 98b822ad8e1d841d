"""Circuit breaker rules, with a fake clock."""

from __future__ import annotations

from services.search.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_refuses_calls() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=3, reset_seconds=10, clock=clock)
    for _ in range(2):
        breaker.record_failure("boom")
    assert breaker.allow()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure("boom")
    assert breaker.is_open
    assert not breaker.allow()
    assert "boom" in breaker.describe()


def test_half_open_admits_one_trial_whose_success_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure()
    clock.now = 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()
    breaker.record_success()
    state: BreakerState = breaker.state
    assert state is BreakerState.CLOSED
    assert breaker.describe() == ""


def test_failed_trial_reopens_for_a_full_interval() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure()
    clock.now = 10
    assert breaker.allow()
    breaker.record_failure()
    clock.now = 19
    assert breaker.is_open
    clock.now = 20
    assert breaker.allow()


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker("x", failure_threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert not breaker.is_open

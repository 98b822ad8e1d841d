"""The one circuit breaker (model providers in search and tasks): its rules, with
a fake clock."""

from __future__ import annotations

import asyncio

from services.platform.resilience import BreakerState, CircuitBreaker, retries_for, trial


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


async def test_half_open_admits_exactly_one_of_many_concurrent_callers() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure()
    clock.now = 10
    release = asyncio.Event()
    calls = 0

    async def call() -> bool:
        nonlocal calls
        if not breaker.allow():
            return False
        calls += 1
        await release.wait()  # the trial is slow: everyone else arrives meanwhile
        breaker.record_success()
        return True

    callers = [asyncio.create_task(call()) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    admitted = await asyncio.gather(*callers)
    assert admitted.count(True) == 1
    assert calls == 1
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_refused_callers_learn_how_long_to_wait() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=1, reset_seconds=10, clock=clock)
    assert breaker.retry_after_seconds() == 0.0
    breaker.record_failure()
    clock.now = 4
    assert breaker.retry_after_seconds() == 6.0
    clock.now = 12
    assert breaker.allow()  # the trial
    clock.now = 15
    assert not breaker.allow()
    assert breaker.retry_after_seconds() == 7.0  # until the trial's window ends


def test_a_trial_that_never_reports_back_stops_blocking_after_an_interval() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure()
    clock.now = 10
    assert breaker.allow()  # its caller is cancelled: neither success nor failure
    clock.now = 19
    assert not breaker.allow()
    clock.now = 20
    assert breaker.allow()


def test_admit_tells_the_trial_from_an_ordinary_call() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=1, reset_seconds=10, clock=clock)
    assert breaker.admit() is False  # closed: an ordinary call
    breaker.record_failure()
    assert breaker.admit() is None  # open: refused
    clock.now = 10
    assert breaker.admit() is True  # half-open: the trial
    assert breaker.admit() is None  # one at a time


def test_a_trial_makes_no_retries() -> None:
    assert retries_for(3) == 3
    with trial(True):
        assert retries_for(3) == 0
        with trial(False):
            assert retries_for(3) == 3
        assert retries_for(3) == 0
    assert retries_for(3) == 3


def test_both_model_clients_use_this_one_breaker() -> None:
    import inspect

    from services.search import embedders
    from services.task import openai_compat

    for module in (embedders, openai_compat):
        source = inspect.getsource(module)
        assert "from services.platform.resilience import CircuitBreaker" in source
        assert "class CircuitBreaker" not in source
        assert "def allow" not in source


def test_a_providers_retry_after_holds_every_call_back_until_it_passes() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=5, reset_seconds=10, clock=clock)
    breaker.record_failure("HTTP 429: slow down", retry_after_seconds=60)
    assert breaker.is_open  # one failure, far below the threshold: the provider asked
    assert breaker.admit() is None
    assert breaker.retry_after_seconds() == 60
    assert "HTTP 429" in breaker.describe()
    clock.now = 59
    assert not breaker.allow()
    clock.now = 60
    assert breaker.admit() is False  # an ordinary call again: the count never opened it
    assert breaker.retry_after_seconds() == 0


def test_a_retry_after_longer_than_the_open_interval_wins() -> None:
    clock = Clock()
    breaker = CircuitBreaker("x", failure_threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure("HTTP 503", retry_after_seconds=25)
    assert breaker.retry_after_seconds() == 25
    clock.now = 10  # the interval is over, the provider's wait is not
    assert breaker.is_open
    assert breaker.retry_after_seconds() == 15
    clock.now = 25
    assert breaker.admit() is True  # now the half-open trial

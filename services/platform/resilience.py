"""Resilience shared by every client of a remote dependency: how long to back off
before the next attempt, which HTTP answers are worth another attempt, and when to
stop calling a dependency that keeps failing.

One rule everywhere (model providers, the change feed, task retries): exponential
backoff with full jitter — the wait before retry `n` (from 0) is uniform in
[0, min(cap, base · 2^n)] — so clients that failed together do not retry together.
And one circuit breaker, in front of each model client (the search service's
`GuardedEmbedder`, the task workers' `OpenAICompatibleGenerator`): both use this
class, no other copy exists. The model clients' own retries happen inside the
`openai` SDK (services/platform/providers.py); the breaker counts a call that
failed after them once, and its half-open trial is one request (`trial`,
`retries_for`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum

# Transient answers of an HTTP model provider: timeouts, conflicts, rate limits and
# server-side failures. Anything else 4xx is the request's fault and is not retried.
RETRYABLE_HTTP_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def backoff_delay(retry: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `retry` (0 = the first retry)."""
    ceiling = min(cap, base * (2 ** max(retry, 0)))
    return (rng or random).uniform(0.0, ceiling)


_TRIAL: ContextVar[bool] = ContextVar("protomesh_breaker_trial", default=False)


@contextmanager
def trial(is_trial: bool) -> Iterator[None]:
    """Marks the call made inside as a half-open breaker's trial (or not)."""
    token = _TRIAL.set(is_trial)
    try:
        yield
    finally:
        _TRIAL.reset(token)


def retries_for(configured: int) -> int:
    """Retries a client may make now: none inside a breaker's trial (one request
    decides whether the provider is back), else `configured`."""
    return 0 if _TRIAL.get() else configured


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Stops calling a dependency that keeps failing: after `failure_threshold`
    consecutive failures it opens and refuses calls for `reset_seconds`; then it is
    half-open and admits exactly one trial call at a time, whose success closes it
    and whose failure re-opens it for a full interval. A trial that never reports
    back (its caller was cancelled) stops blocking after `reset_seconds`. A failure
    that carries the provider's `Retry-After` also holds every call back (open) until
    that time has passed, whatever the count: the provider asked this whole process,
    not one caller, to wait.

    No I/O and an injectable clock, so its rules are tested without sleeping. One
    breaker per model client: the search service's `GuardedEmbedder`, the task
    service's `OpenAICompatibleGenerator`. A failure is a call that failed after
    the client's own retries (the SDK's), not each request."""

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_started: float | None = None
        self._paused_until = -math.inf
        self.last_error = ""

    @property
    def state(self) -> BreakerState:
        if self._clock() < self._paused_until:
            return BreakerState.OPEN
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def is_open(self) -> bool:
        """True while calls are refused outright (a half-open breaker admits a trial)."""
        return self.state is BreakerState.OPEN

    def _trial_in_flight(self) -> bool:
        started = self._trial_started
        return started is not None and self._clock() - started < self.reset_seconds

    def admit(self) -> bool | None:
        """None when a call may not proceed now; else whether it is the half-open
        trial (True) or an ordinary call (False). Callers make the trial with
        `trial(...)` so it is one request."""
        was_half_open = self.state is BreakerState.HALF_OPEN
        return was_half_open if self.allow() else None

    def allow(self) -> bool:
        """Whether a call may proceed now; when half-open, one trial at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight():
            self._trial_started = self._clock()
            return True
        return False

    def retry_after_seconds(self) -> float:
        """How long a refused caller should wait before asking again (0 when closed)."""
        now = self._clock()
        paused = max(self._paused_until - now, 0.0)
        if self.state is BreakerState.OPEN and self._opened_at is not None:
            return max(self.reset_seconds - (now - self._opened_at), paused)
        if self.state is BreakerState.HALF_OPEN and self._trial_started is not None:
            return max(self.reset_seconds - (now - self._trial_started), 0.0)
        return paused

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_started = None
        self.last_error = ""

    def record_failure(self, error: str = "", retry_after_seconds: float = 0.0) -> None:
        """A failed call; `retry_after_seconds`: the provider's `Retry-After`, which
        holds every call back until it has passed."""
        self._failures += 1
        self._trial_started = None
        self.last_error = error
        if retry_after_seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + retry_after_seconds)
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()  # (re-)open: a failed trial restarts the wait

    def describe(self) -> str:
        """Why calls are refused, for people ('' when closed)."""
        if self.state is BreakerState.CLOSED:
            return ""
        detail = f": {self.last_error}" if self.last_error else ""
        return f"{self.name} circuit breaker is {self.state.value}{detail}"

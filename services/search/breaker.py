"""A small circuit breaker for calls to an unreliable dependency (an embedding
provider): after `failure_threshold` consecutive failures it opens and refuses
calls for `reset_seconds`; then one trial call is let through (half-open) and
its outcome closes or re-opens it.

No I/O and an injectable clock, so its rules are tested without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(RuntimeError):
    """Raised instead of calling a dependency whose breaker is open."""


class CircuitBreaker:
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
        self._trial_in_flight = False
        self.last_error = ""

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def is_open(self) -> bool:
        """True while calls are refused (a half-open breaker admits a trial)."""
        return self.state is BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a call may proceed now; in half-open state, only one trial at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False
        self.last_error = ""

    def record_failure(self, error: str = "") -> None:
        self._failures += 1
        self._trial_in_flight = False
        self.last_error = error
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()  # (re-)open: a failed trial restarts the wait

    def describe(self) -> str:
        """Why calls are refused, for people ('' when closed)."""
        if self.state is BreakerState.CLOSED:
            return ""
        detail = f": {self.last_error}" if self.last_error else ""
        return f"{self.name} circuit breaker is {self.state.value}{detail}"

"""A circuit breaker for calls to a remote model provider: after `threshold`
consecutive failures it opens and fails fast for `cooldown_seconds`, then lets
one trial call through (half-open); a success closes it again.

Its errors say how long the breaker stays open, so a task is retried when a
call can reach the provider again, not at once into another fast failure."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.platform.errors import Unavailable


class ProviderUnavailable(Unavailable):
    """The model provider failed, or its circuit is open. `retry_after_seconds`: how
    long until the breaker lets a call through again (0 when it is closed)."""

    def __init__(self, message: str, reason: str, retry_after_seconds: float = 0.0) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = 5,
        cooldown_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown_seconds:
            return "half-open"
        return "open"

    def retry_after_seconds(self) -> float:
        """How long calls are still refused (0 unless open)."""
        if self.opened_at is None or self.state != "open":
            return 0.0
        return max(self.cooldown_seconds - (self.clock() - self.opened_at), 0.0)

    def before_call(self) -> None:
        """Raises ProviderUnavailable while open."""
        if self.state == "open":
            raise ProviderUnavailable(
                "model provider circuit open", "CIRCUIT_OPEN", self.retry_after_seconds()
            )

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.state == "half-open":
            self.opened_at = self.clock()

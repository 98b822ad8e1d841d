"""A circuit breaker for calls to a remote model provider: after `threshold`
consecutive failures it opens and fails fast for `cooldown_seconds`, then lets
one trial call through (half-open); a success closes it again."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.platform.errors import Unavailable


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

    def before_call(self) -> None:
        """Raises Unavailable while open."""
        if self.state == "open":
            raise Unavailable("model provider circuit open", reason="CIRCUIT_OPEN")

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.state == "half-open":
            self.opened_at = self.clock()

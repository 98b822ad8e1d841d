"""Per-tenant overload protection in every service: a token bucket per (tenant,
rate-limit class) and a cap on each tenant's calls in flight. Both shed load at
once with RESOURCE_EXHAUSTED (QuotaFailure + RetryInfo) instead of queueing, so
one noisy tenant cannot take a process's capacity from the others.

Per process, in memory: with N replicas a tenant gets up to N times the rates (the
limits protect capacity; budgets, in the cost service, protect money). A bucket
holds `burst_seconds` worth of its rate and refills continuously; buckets that
have refilled completely are forgotten, so memory follows the active tenants.
The platform's own service identity is never limited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from services.platform.errors import QuotaViolation, ResourceExhausted
from services.platform.identity import SERVICE_TENANT
from services.platform.metrics import RATE_LIMIT_REJECTIONS

# RateLimitClass numbers (protomesh.common.v1) → the names settings use.
CLASS_NAMES = {
    0: "read",
    1: "read",
    2: "write",
    3: "search",
    4: "expensive",
    5: "stream",
    6: "admin",
}
DEFAULT_RATES = "read=60000,write=30000,search=6000,expensive=600,stream=1200,admin=600"
SWEEP_EVERY_CHECKS = 4096
Clock = Callable[[], float]
K = TypeVar("K")


def parse_rates(spec: str) -> dict[str, int]:
    """`read=600,write=60` → {"read": 600, "write": 60} (per minute; 0 = unlimited).
    Unknown class names and malformed pairs raise ValueError."""
    rates: dict[str, int] = {}
    for pair in (p.strip() for p in spec.split(",") if p.strip()):
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or name not in set(CLASS_NAMES.values()):
            raise ValueError(
                f"rate limit {pair!r}: expected CLASS=PER_MINUTE with CLASS one of "
                f"{', '.join(sorted(set(CLASS_NAMES.values())))}"
            )
        try:
            rates[name] = int(value)
        except ValueError:
            raise ValueError(f"rate limit {pair!r}: {value!r} is not a whole number") from None
        if rates[name] < 0:
            raise ValueError(f"rate limit {pair!r}: must not be negative")
    return rates


@dataclass(frozen=True)
class LimitConfig:
    """Requests per minute per tenant and class, the burst, and the in-flight cap."""

    per_minute: Mapping[str, int] = field(default_factory=lambda: parse_rates(DEFAULT_RATES))
    burst_seconds: float = 60.0
    max_in_flight: int = 256

    @classmethod
    def from_settings(cls, settings: object) -> LimitConfig:
        return cls(
            per_minute=parse_rates(str(getattr(settings, "tenant_rate_limits", DEFAULT_RATES))),
            burst_seconds=float(getattr(settings, "tenant_burst_seconds", 60.0)),
            max_in_flight=int(getattr(settings, "tenant_max_in_flight", 256)),
        )


@dataclass
class Bucket:
    """A token bucket's state: tokens left and when they were counted, and the rate
    and capacity it was last taken from."""

    tokens: float
    updated: float
    rate: float = 0.0
    capacity: float = 0.0

    def take(self, rate: float, capacity: float, now: float) -> float:
        """Refills at `rate` per second up to `capacity`, then takes one token:
        0.0 when taken, else the seconds until one is available."""
        self.rate, self.capacity = rate, capacity
        self.tokens = min(capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate

    def full_at(self, now: float) -> bool:
        """Whether it has refilled completely by `now` (then it equals a new one)."""
        return self.rate <= 0 or self.tokens + (now - self.updated) * self.rate >= self.capacity


class TokenBuckets(Generic[K]):
    """Token buckets by key (the one rate limiter of the platform's interceptor and
    of the cost service's tiers): a new key starts full; every `SWEEP_EVERY_CHECKS`
    takes, buckets that have refilled completely are forgotten, so memory follows
    the active keys, not every key ever seen."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[K, Bucket] = {}
        self._takes = 0

    def take(self, key: K, rate: float, capacity: float) -> float:
        """One token from `key`'s bucket: 0.0 when taken, else seconds to wait."""
        now = self._clock()
        self._takes += 1
        if self._takes % SWEEP_EVERY_CHECKS == 0:
            self.sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(capacity, now)
        return bucket.take(rate, capacity, now)

    def sweep(self, now: float) -> None:
        for key in [k for k, bucket in self._buckets.items() if bucket.full_at(now)]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class TenantLimits:
    """The chain's rate limiter (`check`) and concurrency limiter (`enter`)."""

    def __init__(self, config: LimitConfig, service: str, clock: Clock = time.monotonic) -> None:
        self.config = config
        self.service = service
        self._buckets: TokenBuckets[tuple[str, str]] = TokenBuckets(clock)
        self._in_flight: dict[str, int] = {}

    # -- rate ---------------------------------------------------------------

    def check(self, tenant_id: str, rate_limit_class: int) -> None:
        """Takes one token from the tenant's bucket for the class, or raises."""
        if tenant_id == SERVICE_TENANT:
            return
        name = CLASS_NAMES.get(rate_limit_class, "read")
        per_minute = self.config.per_minute.get(name, 0)
        if per_minute <= 0:
            return
        rate = per_minute / 60.0
        capacity = max(1.0, rate * self.config.burst_seconds)
        wait = self._buckets.take((tenant_id, name), rate, capacity)
        if not wait:
            return
        RATE_LIMIT_REJECTIONS.labels(self.service, name).inc()
        raise ResourceExhausted(
            f"tenant {tenant_id!r} exceeded its {name} rate of {per_minute} calls per minute "
            f"on this {self.service} replica; retry after {wait:.3f}s",
            [QuotaViolation(f"tenants/{tenant_id}", f"{name}: {per_minute} calls per minute")],
            retry_after_seconds=round(wait, 3),
        )

    # -- concurrency --------------------------------------------------------

    def enter(self, tenant_id: str) -> Callable[[], None]:
        """Counts one more call in flight for the tenant; returns its release
        (idempotent), or raises when the tenant is at its cap."""
        limit = self.config.max_in_flight
        if tenant_id == SERVICE_TENANT or limit <= 0:
            return _nothing
        current = self._in_flight.get(tenant_id, 0)
        if current >= limit:
            RATE_LIMIT_REJECTIONS.labels(self.service, "in_flight").inc()
            raise ResourceExhausted(
                f"tenant {tenant_id!r} has {current} calls in flight on this {self.service} "
                f"replica (the limit is {limit}); retry shortly",
                [QuotaViolation(f"tenants/{tenant_id}", f"{limit} calls in flight")],
                retry_after_seconds=0.1,
            )
        self._in_flight[tenant_id] = current + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._in_flight.get(tenant_id, 1) - 1
            if left > 0:
                self._in_flight[tenant_id] = left
            else:
                self._in_flight.pop(tenant_id, None)

        return release

    def in_flight(self, tenant_id: str) -> int:
        return self._in_flight.get(tenant_id, 0)

    @property
    def tracked_buckets(self) -> int:
        return len(self._buckets)


def _nothing() -> None:
    return None

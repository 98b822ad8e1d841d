"""Per-tenant overload protection in every service: a token bucket per (tenant,
rate-limit class) and a cap on each tenant's calls in flight. Both shed load at
once with RESOURCE_EXHAUSTED (QuotaFailure + RetryInfo) instead of queueing, so
one noisy tenant cannot take a process's capacity from the others.

Within those limits, a process runs at most `max_running` calls at once (when set);
calls beyond that wait in one queue per tenant and are let in round-robin, one per
tenant in turn, as running calls finish. Without it, a tenant with many calls in
flight fills every FIFO queue a call meets (the database pool's first of all) and
every other tenant's call waits behind all of them; with it, a quiet tenant's call
waits for at most one call to finish.

Per process, in memory: with N replicas a tenant gets up to N times the rates (the
limits protect capacity; budgets, in the cost service, protect money). A bucket
holds `burst_seconds` worth of its rate and refills continuously; buckets that
have refilled completely are forgotten, so memory follows the active tenants.
The platform's own service identity is never limited.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
    """Requests per minute per tenant and class, the burst, the in-flight cap, and
    how many calls the process runs at once (0 = no fair queueing)."""

    per_minute: Mapping[str, int] = field(default_factory=lambda: parse_rates(DEFAULT_RATES))
    burst_seconds: float = 60.0
    max_in_flight: int = 256
    max_running: int = 0

    @classmethod
    def from_settings(cls, settings: object) -> LimitConfig:
        return cls(
            per_minute=parse_rates(str(getattr(settings, "tenant_rate_limits", DEFAULT_RATES))),
            burst_seconds=float(getattr(settings, "tenant_burst_seconds", 60.0)),
            max_in_flight=int(getattr(settings, "tenant_max_in_flight", 256)),
            max_running=int(getattr(settings, "max_running_calls", 0)),
        )


@dataclass
class Bucket:
    """A token bucket's state: tokens left and when they were counted."""

    tokens: float
    updated: float

    def take(self, rate: float, capacity: float, now: float) -> float:
        """Refills at `rate` per second up to `capacity`, then takes one token:
        0.0 when taken, else the seconds until one is available."""
        self.tokens = min(capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate


class FairScheduler:
    """At most `slots` calls run at once; the others wait in a queue per tenant, and
    each finished call hands its slot to the next tenant in turn (round-robin over
    the tenants waiting, FIFO within a tenant). Single event loop, no locks."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.running = 0
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    def try_enter(self) -> bool:
        """Takes a free slot at once, if there is one and nobody is waiting for it."""
        if self.running < self.slots and not self._waiting:
            self.running += 1
            return True
        return False

    async def wait(self, tenant_id: str, deadline: float | None) -> None:
        """Waits for a slot handed over by `leave`; TimeoutError at `deadline` (the
        event loop's clock)."""
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tenant_id, deque()).append(granted)
        try:
            async with asyncio.timeout_at(deadline):
                await granted
        except BaseException:
            if granted.done() and not granted.cancelled():
                self.leave()  # handed a slot just as it gave up: pass it on
            else:
                granted.cancel()
                self._forget(tenant_id, granted)
            raise

    def leave(self) -> None:
        """A running call finished: its slot goes to the next waiting tenant."""
        while self._waiting:
            tenant_id, queue = next(iter(self._waiting.items()))
            granted = queue.popleft()
            if queue:
                self._waiting.move_to_end(tenant_id)
            else:
                del self._waiting[tenant_id]
            if not granted.done():
                granted.set_result(None)
                return
        self.running -= 1

    def waiting(self, tenant_id: str | None = None) -> int:
        if tenant_id is not None:
            return len(self._waiting.get(tenant_id, ()))
        return sum(len(q) for q in self._waiting.values())

    def _forget(self, tenant_id: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(tenant_id)
        if queue is None:
            return
        try:
            queue.remove(granted)
        except ValueError:
            return
        if not queue:
            del self._waiting[tenant_id]


class TenantLimits:
    """The chain's rate limiter (`check`) and concurrency limiter (`admit`)."""

    def __init__(self, config: LimitConfig, service: str, clock: Clock = time.monotonic) -> None:
        self.config = config
        self.service = service
        self._clock = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._in_flight: dict[str, int] = {}
        self._checks = 0
        self.scheduler = FairScheduler(config.max_running) if config.max_running > 0 else None

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
        now = self._clock()
        self._checks += 1
        if self._checks % SWEEP_EVERY_CHECKS == 0:
            self._sweep(now)
        key = (tenant_id, name)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(capacity, now)
        wait = bucket.take(rate, capacity, now)
        if not wait:
            return
        RATE_LIMIT_REJECTIONS.labels(self.service, name).inc()
        raise ResourceExhausted(
            f"tenant {tenant_id!r} exceeded its {name} rate of {per_minute} calls per minute "
            f"on this {self.service} replica; retry after {wait:.3f}s",
            [QuotaViolation(f"tenants/{tenant_id}", f"{name}: {per_minute} calls per minute")],
            retry_after_seconds=round(wait, 3),
        )

    def _sweep(self, now: float) -> None:
        """Forgets buckets that have refilled completely (they equal new ones)."""
        full = []
        for (tenant, name), bucket in self._buckets.items():
            rate = self.config.per_minute.get(name, 0) / 60.0
            capacity = max(1.0, rate * self.config.burst_seconds)
            if rate <= 0 or bucket.tokens + (now - bucket.updated) * rate >= capacity:
                full.append((tenant, name))
        for key in full:
            del self._buckets[key]

    # -- concurrency --------------------------------------------------------

    async def admit(self, tenant_id: str, deadline: float | None = None) -> Callable[[], None]:
        """Counts the call against the tenant's in-flight cap (raising when full),
        then waits its turn for a running slot when the process is at
        `max_running`; returns the release of both (idempotent). TimeoutError when
        `deadline` (event loop clock) passes first."""
        release_flight = self.enter(tenant_id)
        scheduler = self.scheduler
        if scheduler is None or tenant_id == SERVICE_TENANT:
            return release_flight
        if not scheduler.try_enter():
            try:
                await scheduler.wait(tenant_id, deadline)
            except BaseException:
                release_flight()
                raise
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            release_flight()
            scheduler.leave()

        return release

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

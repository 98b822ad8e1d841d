"""Per-tenant rate limits from tiers: a token bucket per (tenant, rate-limit
class), refilled at the tier's requests per minute, with a burst of one minute's
worth.

In memory, per process (a replica enforces its share; N replicas admit up to N
times the rate — acceptable for abuse protection, not for billing). The tier of
every tenant that has one is cached and refreshed by `refresh_loop` every
`ttl_seconds` (and immediately in the process that changes a tier). Tenants
without a tier row are not limited at all (see `services.cost.tiers`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from services.cost.tiers import DEFAULT_TIERS, Tier
from services.platform.errors import QuotaViolation, ResourceExhausted
from services.platform.limits import TokenBuckets
from services.platform.logs import get_logger

log = get_logger("protomesh.cost.ratelimit")
Monotonic = Callable[[], float]


class TierRateLimiter:
    """`services.platform.interceptors.RateLimiter` over tenant tiers."""

    def __init__(
        self,
        load_tiers: Callable[[], Awaitable[dict[str, str]]],
        tiers: Mapping[str, Tier] = DEFAULT_TIERS,
        ttl_seconds: float = 10.0,
        clock: Monotonic = time.monotonic,
    ) -> None:
        self._load = load_tiers
        self._tiers = tiers
        self.ttl_seconds = ttl_seconds
        self._tenant_tiers: dict[str, str] = {}
        self._buckets: TokenBuckets[tuple[str, int]] = TokenBuckets(clock)

    def set_tier(self, tenant_id: str, tier: str) -> None:
        self._tenant_tiers[tenant_id] = tier

    def replace_all(self, tenant_tiers: dict[str, str]) -> None:
        self._tenant_tiers = dict(tenant_tiers)

    def check(self, tenant_id: str, rate_limit_class: int) -> None:
        tier = self._tiers.get(self._tenant_tiers.get(tenant_id, ""))
        if tier is None or tier.requests_per_minute <= 0:
            return
        rate = tier.requests_per_minute / 60.0
        capacity = float(tier.requests_per_minute)
        wait = self._buckets.take((tenant_id, rate_limit_class), rate, capacity)
        if not wait:
            return
        raise ResourceExhausted(
            f"rate limit of tier {tier.name!r} exceeded ({tier.requests_per_minute} requests "
            "per minute)",
            [QuotaViolation(f"tenants/{tenant_id}/tier", f"{tier.requests_per_minute}/min")],
            retry_after_seconds=round(wait, 3),
        )

    async def refresh_loop(self) -> None:
        """Reloads every tenant's tier every `ttl_seconds` (a background loop)."""
        while True:
            self.replace_all(await self._load())
            await asyncio.sleep(self.ttl_seconds)

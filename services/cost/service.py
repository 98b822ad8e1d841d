"""How to serve CostService: its descriptor, servicer registration and factory.

`make_spec` takes the tunables tests and benchmarks change: the clock (tests move
time instead of sleeping), the tiers, the sweeper interval and stream options.
At start-up the default price book (`prices.json`) is loaded idempotently.
The hot path (reserve, commit, release, record usage, charge) runs on a pool of
its own whose connections skip asyncpg's per-release reset query (see
`services.cost.store.keep_session`), through group commit (`CostOptions.
group_commit_max_batch`); everything else uses the runtime's pool.
"""

from __future__ import annotations

from collections.abc import Mapping

from protomesh.cost.v1 import cost_service_pb2, cost_service_pb2_grpc
from services.cost.feed import spend_hub
from services.cost.periods import Clock, utc_now
from services.cost.pricebook import (
    DEFAULT_CURRENCY,
    CachedPriceBook,
    load_default_prices,
    rates_of,
)
from services.cost.ratelimit import TierRateLimiter
from services.cost.servicer import CostOptions, CostServicer
from services.cost.store import CostStore, keep_session
from services.cost.tiers import DEFAULT_TIERS, Tier
from services.cost.worker import Sweeper
from services.platform.db import create_pool
from services.platform.pagination import PageTokens, page_token_secret
from services.platform.server import Runtime, ServiceParts, ServiceSpec, app_dsn, direct_dsn


async def load_price_book(store: CostStore) -> None:
    """Adds the shipped price versions that are not there yet (by model and
    effective_from); versions already present, or added by operators, stay."""
    for entry in load_default_prices():
        await store.insert_price(
            entry["model"],
            entry.get("currency_code", DEFAULT_CURRENCY),
            rates_of(entry),
            entry["effective_from"],
        )


def make_spec(
    clock: Clock = utc_now,
    tiers: Mapping[str, Tier] = DEFAULT_TIERS,
    sweep_interval_seconds: float = 1.0,
    tier_ttl_seconds: float = 10.0,
    options: CostOptions | None = None,
) -> ServiceSpec:
    async def build(runtime: Runtime) -> ServiceParts:
        settings = runtime.settings
        hot_pool = await create_pool(
            app_dsn(settings),
            settings.db_pool_min,
            settings.db_pool_max,
            reset=keep_session,
            statement_cache_size=settings.db_statement_cache_size,
        )
        store = CostStore(
            runtime.pool, hot_pool, max_batch=(options or CostOptions()).group_commit_max_batch
        )
        await load_price_book(store)
        prices = CachedPriceBook(store.load_prices)
        await prices.reload()
        hub = spend_hub(direct_dsn(settings))
        limiter = TierRateLimiter(store.all_tiers, tiers, ttl_seconds=tier_ttl_seconds)
        sweeper = Sweeper(store, clock, interval_seconds=sweep_interval_seconds)
        servicer = CostServicer(
            store,
            prices,
            hub,
            PageTokens(page_token_secret(runtime.settings)),
            clock,
            tiers,
            limiter,
            options,
        )
        return ServiceParts(
            servicer=servicer,
            background=[hub.run, sweeper.run, limiter.refresh_loop],
            rate_limiter=limiter,
            close=hot_pool.close,
        )

    return ServiceSpec(
        name="cost",
        descriptor=cost_service_pb2.DESCRIPTOR.services_by_name["CostService"],
        add_to_server=cost_service_pb2_grpc.add_CostServiceServicer_to_server,
        build=build,
    )


SPEC = make_spec()

"""The spend feed behind WatchSpend: replay from a cursor, then follow live.

One dedicated connection per process `LISTEN`s on `cost_spend`
(`services.platform.notify`); every write of
spend events ends with `pg_notify('cost_spend', tenant)` in its transaction, so a
notification arrives after the events are visible. A notification only wakes
that tenant's watchers, which then read `sequence > cursor` through the pool
under row-level security. Wake-ups carry no data: a lost one costs latency, not
correctness — an idle watcher re-reads once per `recheck_seconds` (a slow safety
net, not polling), and a reconnecting listener wakes every watcher.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import suppress

from services.cost.store import CostStore, Row
from services.platform.notify import Hub

CHANNEL = "cost_spend"
APPLICATION_NAME = "protomesh-cost-feed"


def spend_hub(dsn: str, ping_seconds: float = 30.0) -> Hub:
    """This process's spend watchers, woken by `NOTIFY cost_spend, '<tenant>'`."""
    return Hub(
        dsn,
        CHANNEL,
        APPLICATION_NAME,
        key_of=lambda payload: payload or None,
        ping_seconds=ping_seconds,
    )


async def follow(
    store: CostStore,
    hub: Hub,
    tenant: str,
    after_sequence: int,
    batch_size: int = 200,
    recheck_seconds: float = 30.0,
) -> AsyncGenerator[Row, None]:
    """The tenant's spend events after `after_sequence`, then live ones, forever."""
    subscription = hub.subscribe(tenant)
    cursor = after_sequence
    try:
        while True:
            subscription.event.clear()  # before reading: a NOTIFY during the read re-wakes us
            rows = await store.events_after(tenant, cursor, batch_size)
            for row in rows:
                yield row
                cursor = row["sequence"]
            if len(rows) == batch_size:
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(subscription.event.wait(), recheck_seconds)
    finally:
        hub.unsubscribe(subscription)

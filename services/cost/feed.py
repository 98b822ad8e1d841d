"""The spend feed behind WatchSpend: replay from a cursor, then follow live.

One dedicated connection per process `LISTEN`s on `cost_spend`; every write of
spend events ends with `pg_notify('cost_spend', tenant)` in its transaction, so a
notification arrives after the events are visible. A notification only wakes
that tenant's watchers, which then read `sequence > cursor` through the pool
under row-level security. Wake-ups carry no data: a lost one costs latency, not
correctness — an idle watcher re-reads once per `recheck_seconds` (a slow safety
net, not polling), and a reconnecting listener wakes every watcher.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.cost.store import CostStore, Row

CHANNEL = "cost_spend"
APPLICATION_NAME = "protomesh-cost-feed"


@dataclass(eq=False)
class _Subscription:
    tenant: str
    event: asyncio.Event = field(default_factory=asyncio.Event)


class SpendHub:
    """Fans NOTIFY wake-ups out to this process's watchers."""

    def __init__(self, dsn: str, ping_seconds: float = 30.0) -> None:
        self.dsn = dsn
        self.ping_seconds = ping_seconds
        self._subscriptions: set[_Subscription] = set()
        self.listening = asyncio.Event()

    def subscribe(self, tenant: str) -> _Subscription:
        subscription = _Subscription(tenant)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: _Subscription) -> None:
        self._subscriptions.discard(subscription)

    def wake(self, tenant: str | None) -> None:
        for subscription in self._subscriptions:
            if tenant is None or subscription.tenant == tenant:
                subscription.event.set()

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.wake(payload or None)

    async def run(self) -> None:
        """Listens until cancelled; raises on a lost connection (the server restarts it)."""
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn, server_settings={"application_name": APPLICATION_NAME}
        )
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._on_notify)
            self.listening.set()
            self.wake(None)
            while True:
                with suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.ping_seconds)
                if lost.is_set():
                    raise ConnectionError("spend feed listener connection lost")
                await conn.fetchval("SELECT 1")
        finally:
            self.listening.clear()
            with suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)


async def follow(
    store: CostStore,
    hub: SpendHub,
    tenant: str,
    after_sequence: int,
    batch_size: int = 200,
    recheck_seconds: float = 30.0,
) -> AsyncIterator[Row]:
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

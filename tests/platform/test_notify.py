"""The one LISTEN/NOTIFY listener and hub: fan-out by key, a killed backend survived
by reconnecting, every subscriber woken after a reconnect (notifications sent
meanwhile are lost), later notifications delivered. (A PostgreSQL restart:
tests/faults/test_database_outage.py.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from services.platform.notify import Hub, Listener


@asynccontextmanager
async def running(listener_or_hub: Listener | Hub) -> AsyncIterator[None]:
    task = asyncio.create_task(listener_or_hub.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def notify(dsn: str, channel: str, payload: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_notify($1, $2)", channel, payload)
    finally:
        await conn.close()


async def kill(dsn: str, application_name: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        killed: int = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            application_name,
        )
        return killed
    finally:
        await conn.close()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def test_a_hub_wakes_the_watchers_of_a_key_and_the_key_less_ones(postgres: str) -> None:
    channel = unique("hub")
    hub = Hub(postgres, channel, unique("app"), key_of=lambda payload: payload or None)
    acme, globex, everyone = hub.subscribe("acme"), hub.subscribe("globex"), hub.subscribe(None)
    async with running(hub):
        await asyncio.wait_for(hub.listening.wait(), 5)
        for subscription in (acme, globex, everyone):
            subscription.event.clear()  # the connect woke everyone
        await notify(postgres, channel, "acme")
        await asyncio.wait_for(acme.event.wait(), 5)
        await asyncio.wait_for(everyone.event.wait(), 5)
        assert not globex.event.is_set()
        hub.unsubscribe(acme)
        acme.event.clear()
        await notify(postgres, channel, "acme")
        await asyncio.sleep(0.2)
        assert not acme.event.is_set()
        with hub.subscription("initech") as wake:
            wake.clear()
            await notify(postgres, channel, "initech")
            await asyncio.wait_for(wake.wait(), 5)


async def test_a_killed_connection_is_replaced_and_everyone_woken(postgres: str) -> None:
    channel, name = unique("killed"), unique("app")
    hub = Hub(postgres, channel, name, key_of=lambda payload: payload or None)
    watcher = hub.subscribe("acme")
    connects = 0

    def counted() -> None:
        nonlocal connects
        connects += 1

    hub.listener.on_connect(counted)
    async with running(hub):
        await asyncio.wait_for(hub.listening.wait(), 5)
        watcher.event.clear()
        assert await kill(postgres, name) == 1
        async with asyncio.timeout(10):
            await watcher.event.wait()  # woken by the reconnect, no notification sent
            while connects < 2:  # noqa: ASYNC110 (counting hooks, not waiting on one event)
                await asyncio.sleep(0.01)
        assert hub.listening.is_set()
        watcher.event.clear()
        await notify(postgres, channel, "acme")
        await asyncio.wait_for(watcher.event.wait(), 5)

"""Read-your-writes: how far the index has applied the change feed, and waiting
for it to pass a sequence.

One dedicated connection per process LISTENs on `search_applied` (the indexer
NOTIFYs in each apply transaction, so the wake-up arrives after the commit).
Wake-ups carry the sequence but waiting never depends on them: a waiter also
re-reads the checkpoint every `poll_seconds`, so a lost notification costs
latency, not correctness (and another replica's indexer is seen the same way).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from typing import Any

import asyncpg

from services.platform.logs import get_logger
from services.search.store import APPLIED_CHANNEL, SearchStore

log = get_logger("protomesh.search.freshness")


class AppliedSequence:
    def __init__(self, store: SearchStore, dsn: str, poll_seconds: float = 0.25) -> None:
        self.store = store
        self.dsn = dsn
        self.poll_seconds = poll_seconds
        self.value = 0
        self._changed = asyncio.Event()

    def _advance(self, sequence: int) -> None:
        if sequence > self.value:
            self.value = sequence
            self._changed.set()

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        with suppress(ValueError):
            self._advance(int(payload))

    async def refresh(self) -> int:
        self._advance((await self.store.checkpoint()).applied_sequence)
        return self.value

    async def run(self) -> None:
        """Listens until cancelled; raises on a lost connection (the supervisor restarts it)."""
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn, server_settings={"application_name": "protomesh-search-applied"}
        )
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(APPLIED_CHANNEL, self._on_notify)
            await self.refresh()
            while not lost.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), 30.0)
                if not lost.is_set():
                    await conn.fetchval("SELECT 1")
            raise ConnectionError("search_applied listener connection lost")
        finally:
            with suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)

    async def wait_for(self, sequence: int, budget_seconds: float) -> bool:
        """True once the index has applied `sequence`, False if `budget_seconds` pass first."""
        if self.value >= sequence:
            return True
        end = time.monotonic() + budget_seconds
        while True:
            self._changed.clear()
            if await self.refresh() >= sequence:
                return True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, self.poll_seconds))
            if self.value >= sequence:
                return True

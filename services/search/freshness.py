"""Read-your-writes: how far the index has applied the change feed, and waiting
for it to pass a sequence.

One dedicated connection per process LISTENs on `search_applied`
(`services.platform.notify.Listener`; the indexer NOTIFYs in each apply
transaction, so the wake-up arrives after the commit; every reconnect re-reads
the checkpoint).
Wake-ups carry the sequence but waiting never depends on them: a waiter also
re-reads the checkpoint every `poll_seconds`, so a lost notification costs
latency, not correctness (and another replica's indexer is seen the same way).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

from services.platform.notify import Listener
from services.search.store import APPLIED_CHANNEL, SearchStore


class AppliedSequence:
    def __init__(self, store: SearchStore, dsn: str, poll_seconds: float = 0.25) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.value = 0
        self._changed = asyncio.Event()
        self.listener = Listener(dsn, "protomesh-search-applied")
        self.listener.on(APPLIED_CHANNEL, self._on_notify)
        self.listener.on_connect(self.refresh)

    def _advance(self, sequence: int) -> None:
        if sequence > self.value:
            self.value = sequence
            self._changed.set()

    def _on_notify(self, payload: str) -> None:
        with suppress(ValueError):
            self._advance(int(payload))

    async def refresh(self) -> int:
        self._advance((await self.store.checkpoint()).applied_sequence)
        return self.value

    async def run(self) -> None:
        """Listens until cancelled (reconnecting after a loss)."""
        await self.listener.run()

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

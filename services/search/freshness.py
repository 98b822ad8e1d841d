"""Read-your-writes: how far the index the searches read has applied the change
feed, and waiting for it to pass a sequence.

One dedicated connection per process LISTENs on `search_applied` on the primary
(`services.platform.notify.Listener`; the indexer NOTIFYs in each apply
transaction, so the wake-up arrives after the commit; every reconnect re-reads
the checkpoint).
Wake-ups carry the sequence but waiting never depends on them: a waiter also
re-reads the checkpoint every `poll_seconds`, so a lost notification costs
latency, not correctness (and another replica's indexer is seen the same way).

When searches read a streaming replica (`store.reads_replica`), a notification
only says that the primary has applied a sequence: the value advances from what
the replica's own checkpoint row shows, re-read every `replay_poll_seconds`
while the replica replays an announced sequence. (A standby cannot LISTEN and
never delivers NOTIFY; the listener stays on the primary.)
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

from services.platform.notify import Listener
from services.search.store import APPLIED_CHANNEL, SearchStore


class AppliedSequence:
    def __init__(
        self,
        store: SearchStore,
        dsn: str,
        poll_seconds: float = 0.25,
        replay_poll_seconds: float = 0.01,
    ) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.replay_poll_seconds = replay_poll_seconds
        self.value = 0  # applied, as the searches' reads see it
        self.announced = 0  # applied on the primary, as its notifications said
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
            sequence = int(payload)
            self.announced = max(self.announced, sequence)
            if self.store.reads_replica:
                self._changed.set()  # look at the replica now
            else:
                self._advance(sequence)

    async def refresh(self) -> int:
        self._advance(await self.store.applied_sequence())
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
            # Announced by the primary but not yet replayed here: look again soon.
            step = self.replay_poll_seconds if self.announced >= sequence else self.poll_seconds
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, step))
            if self.value >= sequence:
                return True

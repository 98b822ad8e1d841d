"""Background work of CostService: the reservation sweeper.

Every `interval_seconds` it expires reservations whose ttl has passed (all
tenants, in batches, oldest first), giving their holds back to the budgets.
Reserve does not depend on it for correctness — a Reserve that finds no room
expires lapsed holds on the spot — the sweeper keeps `reserved_micros` honest for
readers and frees holds on budgets nobody is reserving against.
"""

from __future__ import annotations

import asyncio

from services.cost.periods import Clock
from services.cost.store import CostStore
from services.platform.logs import get_logger

log = get_logger("protomesh.cost.sweeper")


class Sweeper:
    def __init__(
        self,
        store: CostStore,
        clock: Clock,
        interval_seconds: float = 1.0,
        batch_size: int = 500,
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval_seconds = interval_seconds
        self.batch_size = batch_size

    async def sweep_once(self) -> int:
        """Expires every lapsed reservation now; returns how many."""
        total = 0
        while True:
            count = await self.store.expire_reservations(self.clock(), self.batch_size)
            total += count
            if count < self.batch_size:
                return total

    async def run(self) -> None:
        while True:
            expired = await self.sweep_once()
            if expired:
                log.info("expired reservations", count=expired)
            await asyncio.sleep(self.interval_seconds)

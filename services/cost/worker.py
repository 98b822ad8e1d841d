"""Background work of CostService: the reservation sweeper.

Every `interval_seconds` it expires reservations whose ttl has passed (all
tenants, in batches, oldest first), giving their holds back to the budgets.
Reserve does not depend on it for correctness — a Reserve that finds no room
expires lapsed holds on the spot — the sweeper keeps `reserved_micros` honest for
readers and frees holds on budgets nobody is reserving against.
"""

from __future__ import annotations

import asyncio
import time

from services.cost import metrics
from services.cost.periods import Clock
from services.cost.store import CostStore
from services.platform.logs import get_logger

log = get_logger("protomesh.cost.sweeper")
GAUGE_INTERVAL_SECONDS = 5.0  # how often the outstanding-reservations gauge is refreshed


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
        sampled = float("-inf")
        while True:
            expired = await self.sweep_once()
            if expired:
                log.info("expired reservations", count=expired)
            if time.monotonic() - sampled >= GAUGE_INTERVAL_SECONDS:
                outstanding = await self.store.outstanding_reservations(self.clock())
                metrics.RESERVATIONS_OUTSTANDING.set(outstanding)
                sampled = time.monotonic()
            await asyncio.sleep(self.interval_seconds)

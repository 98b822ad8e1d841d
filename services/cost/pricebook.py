"""The price book: versioned per-model prices and the lookup "price of model m at
time t" (the version with the latest `effective_from` not after t).

`PriceBook` is a pure, immutable index; `CachedPriceBook` keeps one in memory and
reloads it through a loader (the store) when it is older than its TTL or misses a
model. Staleness cannot mis-rate usage: writes send the version they rated with
and the database rejects it if another version is in effect (`price_changed`),
after which the cache reloads and the write is rated again.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.cost.money import Rates

DEFAULT_PRICES_FILE = Path(__file__).resolve().parent / "prices.json"
DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class PriceVersion:
    model: str
    version: int
    currency_code: str
    rates: Rates
    effective_from: datetime


class PriceBook:
    """All versions of all models, indexed for time lookups."""

    def __init__(self, versions: Iterable[PriceVersion]) -> None:
        by_model: dict[str, list[PriceVersion]] = {}
        for version in versions:
            by_model.setdefault(version.model, []).append(version)
        for entries in by_model.values():
            entries.sort(key=lambda v: v.effective_from)
        self._by_model = by_model
        self._starts = {m: [v.effective_from for v in e] for m, e in by_model.items()}

    def at(self, model: str, when: datetime) -> PriceVersion | None:
        """The version in effect at `when`, or None (unknown model, or not yet priced)."""
        entries = self._by_model.get(model)
        if not entries:
            return None
        index = bisect.bisect_right(self._starts[model], when) - 1
        return entries[index] if index >= 0 else None

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_model.values())


Loader = Callable[[], Awaitable[list[PriceVersion]]]


class CachedPriceBook:
    """A `PriceBook` reloaded after `ttl_seconds`, on a miss, or on demand."""

    def __init__(self, loader: Loader, ttl_seconds: float = 30.0) -> None:
        self._loader = loader
        self._ttl = ttl_seconds
        self._book = PriceBook(())
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def reload(self) -> PriceBook:
        async with self._lock:
            self._book = PriceBook(await self._loader())
            self._loaded_at = time.monotonic()
            return self._book

    async def at(self, model: str, when: datetime) -> PriceVersion | None:
        if time.monotonic() - self._loaded_at > self._ttl:
            await self.reload()
        found = self._book.at(model, when)
        if found is None:
            found = (await self.reload()).at(model, when)
        return found


def load_default_prices(path: Path = DEFAULT_PRICES_FILE) -> list[dict[str, Any]]:
    """The shipped price book's entries (see the comment inside the file)."""
    entries: list[dict[str, Any]] = json.loads(path.read_text())["prices"]
    for entry in entries:
        entry["effective_from"] = datetime.fromisoformat(entry["effective_from"])
        Rates(**_rates_fields(entry))  # validates
    return entries


def _rates_fields(entry: dict[str, Any]) -> dict[str, int]:
    names = (
        "input",
        "output",
        "cached_input",
        "cache_write",
        "long_context_threshold_tokens",
        "long_context_input",
        "long_context_output",
    )
    return {name: int(entry.get(name, 0)) for name in names}


def rates_of(entry: dict[str, Any]) -> Rates:
    return Rates(**_rates_fields(entry))

"""`arrived`: a feed's items in lists of what had already arrived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.search.indexer import arrived


async def feed(items: list[int], gate: asyncio.Event | None = None) -> AsyncIterator[int]:
    for item in items:
        if gate is not None and item == 3:
            await gate.wait()  # the rest arrives later
        yield item


async def test_what_arrived_together_comes_together_and_the_rest_one_by_one() -> None:
    gate = asyncio.Event()
    batches = []
    async for batch in arrived(feed([1, 2, 3, 4, 5], gate), most=10):
        batches.append(batch)
        gate.set()
        await asyncio.sleep(0.01)  # a slow consumer: 3, 4, 5 arrive meanwhile
    assert batches == [[1, 2], [3, 4, 5]]


async def test_lists_are_at_most_the_limit() -> None:
    source = feed(list(range(10)))
    await asyncio.sleep(0)
    batches = [b async for b in arrived(source, most=3)]
    assert [x for b in batches for x in b] == list(range(10))
    assert max(len(b) for b in batches) <= 3


async def test_a_failing_feed_raises_after_the_items_before_the_failure() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise ConnectionError("lost")

    seen: list[int] = []

    async def consume() -> None:
        async for batch in arrived(failing(), most=10):
            seen.extend(batch)

    with pytest.raises(ConnectionError):
        await consume()
    assert seen == [1, 2]


async def test_stopping_early_stops_the_reader() -> None:
    stopped = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
                await asyncio.sleep(0)
        finally:
            stopped.set()

    async for _batch in arrived(endless(), most=4):
        break
    await asyncio.wait_for(stopped.wait(), 1.0)

"""with_heartbeats: a heartbeat whenever the source has been quiet, never in
between its messages, and the source closed with the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.platform.heartbeats import with_heartbeats

EVERY = 0.05


def beat(last: str | None) -> str:
    return f"beat after {last}"


async def test_a_quiet_source_gets_heartbeats_carrying_the_last_message() -> None:
    release = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        yield "a"
        await release.wait()
        yield "b"

    seen: list[str] = []
    async for item in with_heartbeats(source(), EVERY, beat):
        seen.append(item)
        if seen.count("beat after a") == 3:
            release.set()
    assert seen == ["a", "beat after a", "beat after a", "beat after a", "b"]


async def test_heartbeats_before_the_first_message_get_none() -> None:
    release = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        await release.wait()
        yield "a"

    seen: list[str] = []
    async for item in with_heartbeats(source(), EVERY, beat):
        seen.append(item)
        if len(seen) == 2:
            release.set()
    assert seen == ["beat after None", "beat after None", "a"]


async def test_a_busy_source_gets_no_heartbeats() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(20):
            await asyncio.sleep(0.005)
            yield i

    items = [item async for item in with_heartbeats(source(), 2.0, lambda last: -1)]
    assert items == list(range(20))


async def test_an_error_of_the_source_ends_the_stream_with_it() -> None:
    release = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        yield "a"
        await release.wait()
        raise LookupError("gone")

    seen: list[str] = []

    async def consume() -> None:
        async for item in with_heartbeats(source(), EVERY, beat):
            seen.append(item)
            release.set()

    with pytest.raises(LookupError, match="gone"):
        await consume()
    assert seen[0] == "a"
    assert set(seen[1:]) <= {"beat after a"}


async def test_closing_during_a_quiet_read_cancels_it_and_closes_the_source() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        try:
            yield "a"
            await asyncio.Event().wait()  # quiet forever
            yield "never"
        finally:
            closed.set()

    stream = with_heartbeats(source(), EVERY, beat)
    assert await anext(stream) == "a"
    assert await anext(stream) == "beat after a"  # the read of "never" is pending
    await stream.aclose()
    assert closed.is_set()


async def test_closing_after_a_message_closes_the_source() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        try:
            yield "a"
            yield "b"
        finally:
            closed.set()

    stream = with_heartbeats(source(), EVERY, beat)
    assert await anext(stream) == "a"
    await stream.aclose()
    assert closed.is_set()


async def test_cancelling_the_consumer_closes_the_source() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        try:
            await asyncio.Event().wait()
            yield "never"
        finally:
            closed.set()

    async def consume() -> None:
        async for _ in with_heartbeats(source(), EVERY, beat):
            pass

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(EVERY * 2.5)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert closed.is_set()

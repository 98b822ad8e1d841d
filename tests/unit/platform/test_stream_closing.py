"""A streaming handler left suspended at a `yield` when its call ends is closed at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

from services.platform.interceptors import _closed_with_call


class Context:
    """The one ServicerContext method the helper uses."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Any], None]] = []

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self.callbacks.append(callback)

    def end(self) -> None:
        for callback in self.callbacks:
            callback(self)


async def test_a_handler_suspended_at_a_yield_is_closed_when_the_call_ends() -> None:
    released = asyncio.Event()

    async def handler() -> AsyncGenerator[int, None]:
        try:
            yield 1
            yield 2
        finally:
            released.set()  # e.g. a LISTEN subscription given back

    context = Context()
    async with _closed_with_call(handler(), context) as responses:  # type: ignore[arg-type]
        assert await anext(responses) == 1
        context.end()  # the client went away while message 1 was being written
        await asyncio.wait_for(released.wait(), 1.0)


async def test_a_finished_handler_is_left_alone() -> None:
    async def handler() -> AsyncGenerator[int, None]:
        yield 1

    context = Context()
    async with _closed_with_call(handler(), context) as responses:  # type: ignore[arg-type]
        assert [r async for r in responses] == [1]
    context.end()  # nothing to close, nothing raised
    await asyncio.sleep(0)

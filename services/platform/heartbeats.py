"""Heartbeats on server streams: a message whenever a stream has been quiet.

A watch can sit idle for minutes (a task waiting for input, a tenant spending
nothing). A heartbeat every few seconds lets clients and proxies tell a quiet
stream from a dead connection, keeps idle-timeout proxies from cutting it, and
carries the stream's head so a client can resume from it. WatchChanges sends its
own (its feed re-reads at each one); WatchTask and WatchSpend wrap their event
streams with `with_heartbeats`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from google.protobuf import timestamp_pb2

T = TypeVar("T")

DEFAULT_HEARTBEAT_SECONDS = 5.0
_END = object()


async def with_heartbeats(
    messages: AsyncIterator[T], every: float, heartbeat: Callable[[T | None], T]
) -> AsyncIterator[T]:
    """`messages`, with `heartbeat(last message or None)` sent whenever nothing
    was sent for `every` seconds.

    The next message is awaited in a task of its own, so a heartbeat never
    interrupts the source mid-read; closing this generator (the call ended)
    cancels that read and closes the source, whose `finally` blocks run."""
    last: T | None = None
    pending: asyncio.Future[object] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(_next(messages))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield heartbeat(last)
                continue
            item, pending = pending.result(), None
            if item is _END:
                return
            last = item  # type: ignore[assignment]
            yield last  # type: ignore[misc]
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        closing = getattr(messages, "aclose", None)
        if closing is not None:
            await closing()


async def _next(messages: AsyncIterator[T]) -> object:
    return await anext(messages, _END)


def now() -> timestamp_pb2.Timestamp:
    """The server time a heartbeat carries."""
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp

"""Event wake-ups for WatchTask: one LISTEN connection per server process on
channel `task_events` (payload `<task id>:<seq>`), fanned out to the streams
watching that task. Streams read the events themselves from the table; a
notification only says "look again", so a lost one costs a fallback timeout,
never an event."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import asyncpg

from services.platform.logs import get_logger

log = get_logger("protomesh.task.hub")


class EventHub:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._subscribers: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.connected = asyncio.Event()

    @contextlib.contextmanager
    def subscribe(self, task_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the task gets a new event (clear it before reading)."""
        wake = asyncio.Event()
        self._subscribers[task_id].add(wake)
        try:
            yield wake
        finally:
            waiting = self._subscribers.get(task_id)
            if waiting is not None:
                waiting.discard(wake)
                if not waiting:
                    del self._subscribers[task_id]

    def _on_event(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        task_id, _, _ = payload.partition(":")
        for wake in self._subscribers.get(task_id, ()):
            wake.set()

    async def run(self) -> None:
        """Background loop: keeps the LISTEN connection open (reconnecting)."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn)
                closed = asyncio.Event()
                conn.add_termination_listener(functools.partial(_set, closed))
                await conn.add_listener("task_events", self._on_event)
                self.connected.set()
                # Anything committed while we were not listening: wake everyone.
                for waiting in list(self._subscribers.values()):
                    for wake in waiting:
                        wake.set()
                await closed.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("LISTEN connection failed; retrying", error=str(exc))
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(1.0)


def _set(event: asyncio.Event, *_: Any) -> None:
    event.set()

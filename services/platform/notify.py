"""PostgreSQL LISTEN/NOTIFY for a service process: one dedicated connection, kept.

Writers `NOTIFY` inside their transactions, so a notification arrives after what
it announces is visible. Readers never depend on notifications for correctness
(they re-read the table on a slow timer too), only for latency; so everything
here is about keeping the wake-ups flowing:

- `Listener`: one connection outside the request pool that LISTENs on any number
  of channels (`on(channel, callback)`), pings it every `ping_seconds` so a dead
  TCP connection is noticed, and after a loss reconnects with full-jitter backoff
  by itself. After every (re)connect it runs the `on_connect` hooks: whatever was
  notified while it was not listening is lost, so subscribers must look again.
  `connected` is set while it listens.
- `Hub`: one channel fanned out to this process's watchers by key (a tenant, a
  task id): `subscribe(key)` gives a `Subscription` whose `event` a notification
  for that key sets; a key-less subscription (None) sees every key. A reconnect
  wakes everyone.

Used by the document change feed, the cost spend feed, the task event stream,
the task queue's workers and search's read-your-writes.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.platform.logs import get_logger
from services.platform.resilience import backoff_delay

log = get_logger("protomesh.platform.notify")

OnNotify = Callable[[str], None]  # the payload
OnConnect = Callable[[], Awaitable[object] | None]


class Listener:
    def __init__(
        self,
        dsn: str,
        application_name: str,
        ping_seconds: float = 30.0,
        reconnect_base_seconds: float = 0.2,
        reconnect_cap_seconds: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.application_name = application_name
        self.ping_seconds = ping_seconds
        self.reconnect_base_seconds = reconnect_base_seconds
        self.reconnect_cap_seconds = reconnect_cap_seconds
        self.connected = asyncio.Event()
        self._channels: dict[str, list[OnNotify]] = {}
        self._on_connect: list[OnConnect] = []
        self._rng = random.Random()

    def on(self, channel: str, callback: OnNotify) -> None:
        """Calls `callback(payload)` for every notification on `channel` (register
        before `run`)."""
        self._channels.setdefault(channel, []).append(callback)

    def on_connect(self, hook: OnConnect) -> None:
        """Runs `hook` after every (re)connect, once the channels are listened to."""
        self._on_connect.append(hook)

    async def run(self) -> None:
        """Listens until cancelled, reconnecting after every loss."""
        failures = 0
        while True:
            try:
                await self._listen_once()
            except (OSError, asyncpg.PostgresError, ConnectionError) as exc:
                delay = backoff_delay(
                    failures, self.reconnect_base_seconds, self.reconnect_cap_seconds, self._rng
                )
                failures = min(failures + 1, 16)
                log.warning(
                    "LISTEN connection lost; reconnecting",
                    listener=self.application_name,
                    error=str(exc) or type(exc).__name__,
                    delay=round(delay, 3),
                )
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _listen_once(self) -> None:
        """One connection's life: raises ConnectionError when it is lost."""
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn, server_settings={"application_name": self.application_name}
        )
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            for channel, callbacks in self._channels.items():
                await conn.add_listener(channel, _dispatch(callbacks))
            self.connected.set()
            for hook in self._on_connect:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            while True:
                with suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.ping_seconds)
                if lost.is_set():
                    raise ConnectionError(f"{self.application_name} connection lost")
                await conn.fetchval("SELECT 1")
        finally:
            self.connected.clear()
            with suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)


def _dispatch(callbacks: list[OnNotify]) -> Callable[..., None]:
    def handle(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for callback in callbacks:
            callback(payload)

    return handle


@dataclass(eq=False)
class Subscription:
    """One watcher's wake-up flag; `key` None means every key."""

    key: str | None
    event: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    """One NOTIFY channel fanned out to this process's watchers by key."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        application_name: str,
        key_of: Callable[[str], str | None],
        ping_seconds: float = 30.0,
    ) -> None:
        self.listener = Listener(dsn, application_name, ping_seconds)
        self._key_of = key_of
        self._subscriptions: set[Subscription] = set()
        self.listener.on(channel, lambda payload: self.wake(self._key_of(payload)))
        self.listener.on_connect(lambda: self.wake(None))

    @property
    def listening(self) -> asyncio.Event:
        return self.listener.connected

    async def run(self) -> None:
        await self.listener.run()

    def subscribe(self, key: str | None) -> Subscription:
        subscription = Subscription(key)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @contextmanager
    def subscription(self, key: str | None) -> Iterator[asyncio.Event]:
        """`subscribe` for the length of a `with` block; yields the wake-up event."""
        subscription = self.subscribe(key)
        try:
            yield subscription.event
        finally:
            self.unsubscribe(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def wake(self, key: str | None) -> None:
        """Wakes the watchers of `key` and the key-less ones (None: everyone)."""
        for subscription in self._subscriptions:
            if key is None or subscription.key in (None, key):
                subscription.event.set()

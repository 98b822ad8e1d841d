"""The change feed: replay from a cursor, then follow live changes.

Each server process keeps ONE dedicated connection that `LISTEN`s on
`document_changes` (outside the request pool; `services.platform.notify`); every
committed write sends a `NOTIFY` with `"<sequence> <tenant>"` from its own
transaction, so it arrives only after the change is visible. The hub turns a
notification into a wake-up of the watchers that may see the change; a woken watcher reads
`sequence > cursor` through the pool (row-level security applies) and sends
what it finds. Wake-ups carry no data, so lost or coalesced notifications cost
latency, never correctness: an idle watcher re-reads once per heartbeat
interval anyway (the slow safety re-check), and a reconnecting hub wakes all.

Ordering: writers draw sequences in commit order (see the migration), so
"everything after my cursor, in sequence order" never skips a change that
commits later with a smaller number.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass

from google.protobuf import timestamp_pb2

from protomesh.document.v1 import document_service_pb2 as pb
from services.document.convert import change_from_row
from services.document.store import DocumentStore
from services.platform.logs import get_logger
from services.platform.notify import Hub

CHANNEL = "document_changes"
APPLICATION_NAME = "protomesh-document-feed"  # how the listener shows in pg_stat_activity
log = get_logger("protomesh.document.feed")


def change_hub(dsn: str, ping_seconds: float = 30.0) -> Hub:
    """This process's change watchers, woken by `NOTIFY document_changes,
    '<sequence> <tenant>'`: that tenant's watchers and the all-tenant ones."""
    return Hub(
        dsn,
        CHANNEL,
        APPLICATION_NAME,
        key_of=lambda payload: payload.partition(" ")[2] or None,
        ping_seconds=ping_seconds,
    )


@dataclass(frozen=True)
class WatchOptions:
    heartbeat_seconds: float = 5.0
    batch_size: int = 200


async def watch(
    store: DocumentStore,
    hub: Hub,
    tenant: str | None,
    after_sequence: int,
    omit_content: bool,
    options: WatchOptions,
) -> AsyncIterator[pb.WatchChangesResponse]:
    """Changes after `after_sequence` visible to `tenant` (None: all tenants), then
    live ones, with a heartbeat whenever nothing was sent for a heartbeat interval.

    A heartbeat's `head_sequence` is the position up to which this watcher has
    delivered everything it can see, so resuming from it loses nothing."""
    subscription = hub.subscribe(tenant)
    cursor = after_sequence
    idle_since = time.monotonic()
    try:
        while True:
            subscription.event.clear()  # before reading: a NOTIFY during the read re-wakes us
            rows = await store.changes_after(
                tenant, cursor, options.batch_size, with_content=not omit_content
            )
            for row in rows:
                yield pb.WatchChangesResponse(
                    change=change_from_row(row, with_tenant=tenant is None)
                )
                cursor = row["sequence"]
            if rows:
                idle_since = time.monotonic()
                if len(rows) == options.batch_size:
                    continue  # more backlog: keep reading without waiting
            elif time.monotonic() - idle_since >= options.heartbeat_seconds:
                yield heartbeat(cursor)
                idle_since = time.monotonic()
            remaining = options.heartbeat_seconds - (time.monotonic() - idle_since)
            with suppress(TimeoutError):
                await asyncio.wait_for(subscription.event.wait(), max(remaining, 0.0))
    finally:
        hub.unsubscribe(subscription)


def heartbeat(head_sequence: int) -> pb.WatchChangesResponse:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return pb.WatchChangesResponse(heartbeat=pb.Heartbeat(head_sequence=head_sequence, time=now))

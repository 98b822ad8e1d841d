"""Idle server streams stay open under clients that send keepalive pings.

A client with `grpc.keepalive_time_ms` 5000 pings every 5 s whenever the connection
is quiet. gRPC's server defaults count a ping less than 5 minutes after the last
one, with no data sent in between, as a strike and close the connection
(GOAWAY `too_many_pings`) after the second strike: every watch on it ended with an
error within ~20 s. This test holds Health/Watch, WatchTask (an idle task: no worker
runs), WatchSpend and WatchChanges open together on such clients for two minutes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.document.v1 import document_service_pb2 as document_pb
from protomesh.document.v1 import document_service_pb2_grpc as document_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from services.cost.service import SPEC as COST
from services.document.service import SPEC as DOCUMENT
from services.platform.config import Settings
from services.platform.server import ServiceServer
from services.task.service import SPEC as TASK
from tests.conftest import Mint, bearer, running

HOLD_SECONDS = 120.0
# What common clients send: a ping after 5 s without traffic, also with no call
# open, and no cap on pings while nothing else is sent.
KEEPALIVE_CLIENT = (
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


@dataclass
class Watched:
    """What one stream delivered while held open, and how it ended."""

    name: str
    messages: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    ended_at: float | None = None

    async def hold(self, stream: Any) -> None:
        try:
            async for message in stream:
                self.messages.append(message)
            self.ended_at = time.monotonic()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # recorded, and asserted on
            self.error = exc
            self.ended_at = time.monotonic()


def keepalive_channel(server: ServiceServer) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=KEEPALIVE_CLIENT)


async def watches(
    settings: Settings, mint: Mint, stack: AsyncExitStack
) -> AsyncIterator[tuple[Watched, Any]]:
    """(record, stream) for each watch, each on a pinging channel of its own, so
    no watch's traffic keeps another's connection busy."""
    tenant = "t-" + uuid.uuid4().hex[:12]
    md = bearer(mint(tenant))
    servers = {}
    for spec in (DOCUMENT, TASK, COST):
        server, _ = await stack.enter_async_context(running(spec, settings))
        servers[spec.name] = server

    async def channel(service: str) -> grpc.aio.Channel:
        return await stack.enter_async_context(keepalive_channel(servers[service]))

    tasks = task_grpc.TaskServiceStub(await channel("task"))
    idle = await tasks.CreateTask(
        task_pb.CreateTaskRequest(task=task_pb.Task(type="noop")), metadata=md
    )
    health = health_pb2_grpc.HealthStub(await channel("task"))
    yield Watched("Health/Watch"), health.Watch(health_pb2.HealthCheckRequest(service=""))
    yield (
        Watched("WatchTask"),
        tasks.WatchTask(task_pb.WatchTaskRequest(name=idle.name), metadata=md),
    )
    spend = cost_grpc.CostServiceStub(await channel("cost"))
    yield Watched("WatchSpend"), spend.WatchSpend(cost_pb.WatchSpendRequest(), metadata=md)
    documents = document_grpc.DocumentServiceStub(await channel("document"))
    yield (
        Watched("WatchChanges"),
        documents.WatchChanges(document_pb.WatchChangesRequest(), metadata=md),
    )


def heartbeats(watched: Watched) -> int:
    return sum(1 for m in watched.messages if m.WhichOneof(ONEOF[watched.name]) == "heartbeat")


ONEOF = {"WatchTask": "item", "WatchSpend": "kind", "WatchChanges": "event"}


@pytest.mark.slow
@pytest.mark.timeout(HOLD_SECONDS + 60)
async def test_idle_watches_survive_two_minutes_of_client_keepalive_pings(
    settings: Settings, mint: Mint
) -> None:
    async with AsyncExitStack() as stack:
        held: list[tuple[Watched, asyncio.Task[None]]] = []
        async for watched, stream in watches(settings, mint, stack):
            held.append((watched, asyncio.create_task(watched.hold(stream))))
        started = time.monotonic()
        await asyncio.sleep(HOLD_SECONDS)
        for _, task in held:
            task.cancel()
        await asyncio.gather(*(task for _, task in held), return_exceptions=True)

    ended = [
        f"{w.name} ended after {w.ended_at - started:.0f}s: {w.error!r}"
        for w, _ in held
        if w.ended_at is not None
    ]
    assert not ended
    by_name = {watched.name: watched for watched, _ in held}
    assert by_name["Health/Watch"].messages[0].status == health_pb2.HealthCheckResponse.SERVING
    for name in ONEOF:
        # A heartbeat at least every 15 s of the two minutes (5 s by default).
        assert heartbeats(by_name[name]) >= HOLD_SECONDS // 15, (name, heartbeats(by_name[name]))

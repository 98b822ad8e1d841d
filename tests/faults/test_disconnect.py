"""Clients that go away mid-stream: the server-side work stops with them.

gRPC: a client cancels WatchChanges / WatchTask after the first message; SSE: an
HTTP client closes `GET /v1/tasks/{id}:watch` through the gateway mid-stream.
Each time, on the real services: the handler ends CANCELLED (the interceptor's
RPC count), its wake-up subscription is dropped from the service's LISTEN hub,
no pool connection stays checked out, and after 20 connect/disconnect cycles the
services hold no session per cycle (pools may grow by a few under background
work; a leak would add one per cycle).

Through the gateway the upstream call is often cancelled while a message is being
written; the interceptor chain then closes the handler's generators at once (it sends
with `context.write` from a coroutine, so the cancellation reaches it), which these
tests hold it to: every cycle is counted CANCELLED within seconds, without the garbage
collector's help."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.app import create_app
from gateway.config import GatewayConfig
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.task.v1 import task_service_pb2 as task_pb
from tests.conftest import Mint
from tests.faults.conftest import System, Tenant, eventually, rpc_count
from tests.integration.gateway.harness import live_server

CYCLES = 20
DOCUMENTS = "protomesh.document.v1.DocumentService"
TASKS = "protomesh.task.v1.TaskService"


async def app_sessions(owner: asyncpg.Connection) -> int:
    """PostgreSQL sessions the services hold in the suite's database."""
    count: int = await owner.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND usename = 'protomesh_app'"
    )
    return count


def watching_documents(system: System) -> int:
    """Streams subscribed to the document service's change hub (white box)."""
    return int(system.servicers["document"].hub.subscriber_count)


def watching_tasks(system: System) -> int:
    """Streams subscribed to the task service's event hub (white box)."""
    return int(system.servicers["task"].hub.subscriber_count)


def pool_in_use(system: System, service: str) -> int:
    pool = system.servicers[service].store.pool
    return int(pool.get_size() - pool.get_idle_size())


async def within(seconds: float, condition: Callable[[], bool]) -> bool:
    try:
        await eventually(condition, within=seconds)
    except AssertionError:
        return False
    return True


async def cycles_release_everything(
    system: System,
    owner: asyncpg.Connection,
    service: str,
    method: str,
    watching: Callable[[System], int],
    connect_and_leave: Callable[[], Awaitable[None]],
) -> None:
    """Runs CYCLES connect → first message → disconnect cycles (after one to warm
    up), then checks that each one's server-side work ended and nothing is left.
    `connect_and_leave` checks that the server is watching before it leaves."""
    name = "document" if service == DOCUMENTS else "task"
    baseline = watching(system)  # the search indexer's feed, for documents
    await connect_and_leave()  # warm-up: pools and channels at their working size
    await eventually(lambda: watching(system) == baseline, what="warm-up over")
    cancelled = rpc_count(service, method, "CANCELLED")
    sessions = await app_sessions(owner)
    for _ in range(CYCLES):
        await connect_and_leave()

    def released() -> bool:
        return watching(system) == baseline and pool_in_use(system, name) == 0

    def all_cancelled() -> bool:
        return released() and rpc_count(service, method, "CANCELLED") == cancelled + CYCLES

    assert await within(5, all_cancelled), (
        f"{method}: {watching(system) - baseline} subscriptions and "
        f"{pool_in_use(system, name)} pool connections left, "
        f"{rpc_count(service, method, 'CANCELLED') - cancelled} of {CYCLES} calls counted "
        "CANCELLED after the disconnects"
    )
    # No session per cycle: a leak would add CYCLES; the services' pools may grow by a
    # few meanwhile under concurrent background work (indexer, sweeper, health checks).
    assert await app_sessions(owner) < sessions + CYCLES // 4


@pytest.mark.timeout(60)
async def test_a_cancelled_watch_changes_stream_releases_its_server_side_work(
    system: System, owner: asyncpg.Connection, mint: Mint
) -> None:
    tenant = Tenant(system, mint, f"dc-{uuid.uuid4().hex[:8]}")
    await system.documents.CreateDocument(
        doc_pb.CreateDocumentRequest(document=doc_pb.Document(content="Watched.")),
        metadata=tenant.md,
    )
    baseline = watching_documents(system)

    async def connect_and_leave() -> None:
        call = system.documents.WatchChanges(doc_pb.WatchChangesRequest(), metadata=tenant.md)
        assert (await call.read()).HasField("change")
        assert watching_documents(system) >= baseline + 1  # the server is watching
        call.cancel()

    await cycles_release_everything(
        system, owner, DOCUMENTS, "WatchChanges", watching_documents, connect_and_leave
    )


@pytest.mark.timeout(60)
async def test_a_cancelled_watch_task_stream_releases_its_server_side_work(
    system: System, owner: asyncpg.Connection, mint: Mint
) -> None:
    tenant = Tenant(system, mint, f"dt-{uuid.uuid4().hex[:8]}")
    task = await tenant.create_task("noop", {})  # no worker runs: it stays SUBMITTED
    baseline = watching_tasks(system)

    async def connect_and_leave() -> None:
        call = system.tasks.WatchTask(task_pb.WatchTaskRequest(name=task.name), metadata=tenant.md)
        assert (await call.read()).HasField("task")
        await eventually(lambda: watching_tasks(system) >= baseline + 1)
        call.cancel()

    try:
        await cycles_release_everything(
            system, owner, TASKS, "WatchTask", watching_tasks, connect_and_leave
        )
    finally:
        await system.tasks.CancelTask(task_pb.CancelTaskRequest(name=task.name), metadata=tenant.md)


@pytest.mark.timeout(60)
async def test_an_sse_client_closing_mid_stream_cancels_the_upstream_watch(
    system: System, owner: asyncpg.Connection, mint: Mint
) -> None:
    tenant = Tenant(system, mint, f"ds-{uuid.uuid4().hex[:8]}")
    task = await tenant.create_task("noop", {})
    baseline = watching_tasks(system)
    app = create_app(
        GatewayConfig.from_settings(system.settings),
        backends={TASKS: system.address("task"), DOCUMENTS: system.address("document")},
    )
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {tenant.token}"}
    try:
        async with live_server(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:

            async def connect_and_leave() -> None:
                async with http.stream("GET", f"/v1/{task.name}:watch", headers=headers) as sse:
                    assert sse.status_code == 200
                    first = await anext(sse.aiter_lines())
                    snapshot: dict[str, Any] = json.loads(first.removeprefix("data: "))
                    assert snapshot["task"]["name"] == task.name
                    await eventually(lambda: watching_tasks(system) >= baseline + 1)
                # Leaving the block closes the connection in the middle of the stream.

            await cycles_release_everything(
                system, owner, TASKS, "WatchTask", watching_tasks, connect_and_leave
            )
    finally:
        await system.tasks.CancelTask(task_pb.CancelTaskRequest(name=task.name), metadata=tenant.md)

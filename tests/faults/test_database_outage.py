"""PostgreSQL goes away and comes back: health follows it, RPCs fail cleanly while it
is down (UNAVAILABLE, not INTERNAL) and work again afterwards without a restart, and
the process's LISTEN connection (`services.platform.notify.Listener`) reconnects
and delivers notifications again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.platform.config import Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.migrations import migrate
from services.platform.notify import Listener
from services.platform.server import Runtime, ServiceParts, ServiceServer, ServiceSpec, app_dsn
from tests.conftest import Mint, bearer


class Pinger(pb_grpc.DocumentServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.pool = runtime.pool
        self.heard: list[str] = []
        self.connects = 0
        self.listener = Listener(app_dsn(runtime.settings), "protomesh-outage-test", 0.5)
        self.listener.on("outage_test", self.heard.append)
        self.listener.on_connect(self._connected)

    def _connected(self) -> None:
        self.connects += 1

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Any) -> pb.Document:
        value = await self.pool.fetchval("SELECT 41 + 1")
        return pb.Document(name=request.name, title=str(value))


async def _build(runtime: Runtime) -> ServiceParts:
    pinger = Pinger(runtime)
    return ServiceParts(servicer=pinger, background=[pinger.listener.run])


SPEC = ServiceSpec(
    "document",
    pb.DESCRIPTOR.services_by_name["DocumentService"],
    pb_grpc.add_DocumentServiceServicer_to_server,
    _build,
)


async def _true(value: bool) -> bool:
    return value


async def stub_notify(dsn: str, payload: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_notify('outage_test', $1)", payload)
    finally:
        await conn.close()


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    return int(reply.status)


async def _eventually(predicate: Any, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(90)
async def test_health_and_calls_follow_a_database_restart(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, mint: Mint
) -> None:
    # A private server: restarting the session's shared one would disturb other tests.
    data = Path(tmp_path_factory.mktemp("pgf"))
    postgres = EmbeddedPostgres(data / "pg")
    dsn = await asyncio.to_thread(postgres.start)
    await migrate(dsn)
    own = replace(settings, database_url=dsn, health_check_interval_seconds=0.3)
    server = ServiceServer(SPEC, own, port=0)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    stub = pb_grpc.DocumentServiceStub(channel)
    metadata = bearer(mint("t1", scopes="documents:read"))
    request = pb.GetDocumentRequest(name="documents/ping")
    try:
        assert (await stub.GetDocument(request, metadata=metadata)).title == "42"
        await asyncio.to_thread(postgres.halt)

        async def not_serving() -> bool:
            return await _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING

        await _eventually(not_serving)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.GetDocument(request, metadata=metadata, timeout=5)
        assert failed.value.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )

        await asyncio.to_thread(postgres.resume)

        async def serving() -> bool:
            return await _health(channel) == health_pb2.HealthCheckResponse.SERVING

        await _eventually(serving)

        async def answers() -> bool:
            try:
                return (await stub.GetDocument(request, metadata=metadata)).title == "42"
            except grpc.aio.AioRpcError:
                return False

        await _eventually(answers)

        pinger = server._parts.servicer
        await _eventually(
            lambda: _true(pinger.connects >= 2 and pinger.listener.connected.is_set())
        )
        await stub_notify(dsn, "after the restart")
        await _eventually(lambda: _true(pinger.heard == ["after the restart"]))
    finally:
        await channel.close()
        await server.stop(grace=1.0)
        await asyncio.to_thread(postgres.stop)

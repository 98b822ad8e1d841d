"""Health, reflection and graceful shutdown of a real service server."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.platform.config import Settings
from services.platform.server import Runtime, ServiceParts, ServiceServer, ServiceSpec
from tests.conftest import Mint, bearer, eventually
from tests.platform.conftest import PlatformProbe


async def test_health_reports_serving_for_the_server_and_the_service(probe_channel) -> None:
    health = health_pb2_grpc.HealthStub(probe_channel)
    for service in ("", "protomesh.document.v1.DocumentService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_service(probe_channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(probe_channel)

    async def requests():  # type: ignore[no-untyped-def]
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for reply in reflection.ServerReflectionInfo(requests()):
        names = {s.name for s in reply.list_services_response.service}
        assert "protomesh.document.v1.DocumentService" in names
        assert "grpc.health.v1.Health" in names
        break


class ReportingProbe(PlatformProbe):
    """The platform probe, telling the test when a GetDocument call has reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.handling = asyncio.Event()

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Any) -> pb.Document:
        self.handling.set()
        return await super().GetDocument(request, context)


async def test_graceful_shutdown_drains_in_flight_rpcs_and_flips_health_first(
    probe_spec: ServiceSpec, settings: Settings, mint: Mint
) -> None:
    probe = ReportingProbe()

    async def build(runtime: Runtime) -> ServiceParts:
        return ServiceParts(servicer=probe)

    server = ServiceServer(dataclasses.replace(probe_spec, build=build), settings, port=0)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    stub = pb_grpc.DocumentServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    in_flight = asyncio.ensure_future(
        stub.GetDocument(  # the handler sleeps 0.6 s: it is still running when the stop begins
            pb.GetDocumentRequest(name="documents/sleep0-6"), metadata=bearer(mint("t1"))
        )
    )
    await asyncio.wait_for(probe.handling.wait(), 10)
    stopping = asyncio.ensure_future(server.stop(grace=5.0))
    # Health turned NOT_SERVING before the server stopped accepting (and the call ended).
    await eventually(
        lambda: server.health._server_status[""] == health_pb2.HealthCheckResponse.NOT_SERVING,
        within=5,
        every=0.01,
        what="health NOT_SERVING",
    )
    assert not in_flight.done()
    doc = await in_flight
    assert doc.name == "documents/sleep0-6"
    await stopping
    del health
    await channel.close()

"""A test servicer on the real DocumentService contract: its RPCs exercise the
platform (auth, validation, deadlines, errors, shutdown), not document logic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.platform.config import Settings
from services.platform.context import current_call, principal
from services.platform.errors import AlreadyExists, QuotaViolation, ResourceExhausted
from services.platform.server import Runtime, ServiceParts, ServiceSpec
from tests.conftest import running


class PlatformProbe(pb_grpc.DocumentServiceServicer):
    """GetDocument reports what the platform told the handler; `name` picks a behaviour."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Any) -> pb.Document:
        behaviour = request.name.removeprefix("documents/")
        if behaviour == "conflict":
            raise AlreadyExists("already there", reason="REQUEST_ID_REUSED", metadata={"k": "v"})
        if behaviour == "quota":
            raise ResourceExhausted(
                "over budget", [QuotaViolation("budgets/b1", "remaining 0")], retry_after_seconds=2
            )
        if behaviour == "crash":
            raise RuntimeError("secret internal detail")
        if behaviour.startswith("sleep"):
            try:
                await asyncio.sleep(float(behaviour.removeprefix("sleep").replace("-", ".")))
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        remaining = current_call().time_remaining()
        who = principal()
        return pb.Document(
            name=request.name,
            title=f"{who.tenant_id}/{who.user_id}",
            content=current_call().request_id,
            size_bytes=int((remaining or -1) * 1000),
        )


@pytest.fixture(scope="session")
def probe() -> PlatformProbe:
    return PlatformProbe()


@pytest.fixture(scope="session")
def probe_spec(probe: PlatformProbe) -> ServiceSpec:
    async def build(runtime: Runtime) -> ServiceParts:
        return ServiceParts(servicer=probe)

    return ServiceSpec(
        name="document",
        descriptor=pb.DESCRIPTOR.services_by_name["DocumentService"],
        add_to_server=pb_grpc.add_DocumentServiceServicer_to_server,
        build=build,
    )


@pytest.fixture(scope="session")
async def probe_channel(
    probe_spec: ServiceSpec, settings: Settings
) -> AsyncIterator[grpc.aio.Channel]:
    async with running(probe_spec, settings) as (_, channel):
        yield channel


@pytest.fixture(scope="session")
def stub(probe_channel: grpc.aio.Channel) -> pb_grpc.DocumentServiceStub:
    return pb_grpc.DocumentServiceStub(probe_channel)

"""One DocumentService server (real PostgreSQL, real gRPC) for the document
tests, with a short heartbeat interval and a small batch limit so those paths
are quick to reach."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.document.feed import WatchOptions
from services.document.service import make_spec
from services.platform.config import Settings
from services.platform.server import ServiceServer
from tests.conftest import running

HEARTBEAT_SECONDS = 0.3
MAX_BATCH_ITEMS = 25


@pytest.fixture(scope="session")
async def document_server(
    settings: Settings,
) -> AsyncIterator[tuple[ServiceServer, grpc.aio.Channel]]:
    spec = make_spec(WatchOptions(heartbeat_seconds=HEARTBEAT_SECONDS), MAX_BATCH_ITEMS)
    async with running(spec, settings) as (server, channel):
        yield server, channel


@pytest.fixture(scope="session")
def stub(document_server: tuple[ServiceServer, grpc.aio.Channel]) -> pb_grpc.DocumentServiceStub:
    return pb_grpc.DocumentServiceStub(document_server[1])


def new_doc(content: str = "hello world", **fields: object) -> pb.Document:
    return pb.Document(content=content, **fields)  # type: ignore[arg-type]

"""Fixtures: compiled test protos, a ThingService backend on a real grpc.aio
server, the gateway app for it and an httpx client over ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.integration.gateway.harness import (
    Backend,
    Compiled,
    asgi_client,
    compile_test_protos,
    live_server,
    make_app,
    start_backend,
)


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    return compile_test_protos(tmp_path_factory.mktemp("gatewaytest"))


@pytest.fixture(scope="session")
async def backend(compiled: Compiled) -> AsyncIterator[Backend]:
    started = await start_backend(compiled)
    yield started
    await started.server.stop(0)


@pytest.fixture(scope="session")
def app(compiled: Compiled, backend: Backend) -> Starlette:
    return make_app(compiled, backend)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


@pytest.fixture(scope="session")
async def live_url(app: Starlette) -> AsyncIterator[str]:
    async with live_server(app) as url:
        yield url

"""Shared fixtures: one embedded PostgreSQL (with pgvector) per test session,
migrated once; dev signing keys; token minting; real gRPC servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.platform.channels import Dialer
from services.platform.config import Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.migrations import migrate
from services.platform.server import ServiceServer, ServiceSpec

ALL_SCOPES = (
    "documents:read documents:write search:read search:admin tasks:read tasks:write "
    "cost:read cost:write"
)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Unix socket paths are limited to ~107 bytes: keep the data dir short.
    path = Path(tmp_path_factory.mktemp("pm"))
    return path


@pytest.fixture(scope="session")
def postgres(data_dir: Path) -> Iterator[str]:
    """Owner DSN of a migrated `protomesh` database on an embedded server."""
    server = EmbeddedPostgres(data_dir / "pg")
    dsn = server.start()
    yield dsn
    server.stop()


@pytest.fixture(scope="session")
async def migrated(postgres: str) -> str:
    await migrate(postgres)
    return postgres


@pytest.fixture(scope="session")
def settings(data_dir: Path, migrated: str) -> Settings:
    ensure_dev_key(data_dir)
    os.environ.pop("PROTOMESH_SERVICE_TOKEN", None)
    return Settings(
        data_dir=data_dir,
        database_url=migrated,
        log_level=os.environ.get("PROTOMESH_TEST_LOG_LEVEL", "warning"),
        grace_period_seconds=2.0,
    )


Mint = Callable[..., str]


@pytest.fixture(scope="session")
def mint(settings: Settings) -> Mint:
    """mint(tenant, user="alice", scopes=ALL_SCOPES, **claims) → a signed dev token."""
    key = load_key(settings.data_dir / "dev-signing-key.pem")

    def _mint(tenant: str, user: str = "alice", scopes: str = ALL_SCOPES, **kw: Any) -> str:
        ttl = kw.pop("ttl_seconds", 3600)
        return mint_token(
            key,
            tenant=tenant,
            user=user,
            scopes=scopes,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=ttl,
            extra_claims=kw or None,
        )

    return _mint


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@asynccontextmanager
async def running(
    spec: ServiceSpec, settings: Settings
) -> AsyncIterator[tuple[ServiceServer, grpc.aio.Channel]]:
    """A real server for `spec` on an ephemeral 127.0.0.1 port and a channel to it
    (with TLS when `settings` turn it on)."""
    server = ServiceServer(spec, settings, port=0)
    await server.start()
    address = f"127.0.0.1:{server.port}"
    if settings.tls.enabled:
        channel = Dialer.from_settings(settings).probe(address)
    else:
        channel = grpc.aio.insecure_channel(address)
    try:
        yield server, channel
    finally:
        await channel.close()
        await server.stop(grace=1.0)


async def eventually(
    predicate: Callable[[], Any], within: float = 10.0, every: float = 0.05, what: str = ""
) -> None:
    """Polls `predicate` (sync or async) until it is truthy, or fails the test."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {within}s: {what or predicate}")
        await asyncio.sleep(every)


# The whole system as real processes (tests/e2e, tests/security), started lazily once.
from tests.cluster import cluster  # noqa: E402, F401

"""SearchService on real PostgreSQL and real gRPC, next to a real DocumentService,
in a database of their own (so the indexer's global checkpoint and the feed
hold only these tests' changes), with the hashing embedder and short intervals."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest

from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from services.document.feed import WatchOptions
from services.document.service import make_spec as document_spec
from services.platform.config import Settings
from services.platform.db import with_database
from services.platform.migrations import migrate
from services.platform.resilience import CircuitBreaker
from services.platform.server import ServiceServer
from services.search.embedders import Embedder, GuardedEmbedder, HashingEmbedder
from services.search.indexer import IndexerOptions
from services.search.service import make_spec
from tests.conftest import eventually, running
from tests.integration.conftest import Metadata

FAST_INDEXER = IndexerOptions(
    embed_batch_size=16,
    embed_idle_seconds=0.2,
    embed_retry_seconds=0.2,
    reconnect_base_seconds=0.05,
    reconnect_cap_seconds=0.5,
)


async def fresh_database(owner_dsn: str, name: str) -> str:
    """A newly created, migrated database on the session's server; its owner DSN."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = with_database(owner_dsn, name)
    await migrate(dsn)
    return dsn


class SwitchableEmbedder:
    """The hashing embedder with an off switch (simulated provider outage)."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder()
        self.failing = False
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed(self, texts: Any) -> list[list[float]]:
        self.calls += 1
        if self.failing:
            raise OSError("embedding provider unreachable (test)")
        return await self.inner.embed(texts)


class MovableClock:
    """time.monotonic, which a test can move forward (instead of sleeping)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@dataclasses.dataclass
class Stack:
    settings: Settings
    documents: doc_grpc.DocumentServiceStub
    search: pb_grpc.SearchServiceStub
    search_server: ServiceServer
    embedder: SwitchableEmbedder
    guarded: GuardedEmbedder
    owner_dsn: str
    breaker_clock: MovableClock = dataclasses.field(default_factory=MovableClock)


@pytest.fixture(scope="session")
async def search_db(migrated: str) -> str:
    return await fresh_database(migrated, "search_it")


@pytest.fixture(scope="session")
async def stack(settings: Settings, search_db: str) -> AsyncIterator[Stack]:
    local = dataclasses.replace(settings, database_url=search_db)
    embedder = SwitchableEmbedder()
    holder: dict[str, GuardedEmbedder] = {}
    clock = MovableClock()

    def guard(inner: Embedder) -> GuardedEmbedder:
        breaker = CircuitBreaker(
            "embedder test", failure_threshold=2, reset_seconds=0.5, clock=clock
        )
        holder["g"] = GuardedEmbedder(inner, breaker)
        return holder["g"]

    async with running(document_spec(WatchOptions(heartbeat_seconds=0.3)), local) as (
        _doc_server,
        doc_channel,
    ):
        doc_port = _doc_server.port
        search_settings = dataclasses.replace(local, document_address=f"127.0.0.1:{doc_port}")
        spec = make_spec(lambda: embedder, FAST_INDEXER, run_indexer=True, guarded=guard)
        async with running(spec, search_settings) as (server, channel):
            yield Stack(
                local,
                doc_grpc.DocumentServiceStub(doc_channel),
                pb_grpc.SearchServiceStub(channel),
                server,
                embedder,
                holder["g"],
                search_db,
                clock,
            )


async def put(
    stack: Stack,
    auth: Metadata,
    doc_id: str,
    content: str,
    title: str = "",
    labels: dict[str, str] | None = None,
) -> doc_pb.Document:
    document: doc_pb.Document = await stack.documents.CreateDocument(
        doc_pb.CreateDocumentRequest(
            document_id=doc_id,
            document=doc_pb.Document(title=title, content=content, labels=labels or {}),
        ),
        metadata=auth,
    )
    return document


async def search(
    stack: Stack, auth: Metadata, query: str, min_sequence: int = 0, **fields: Any
) -> pb.SearchResponse:
    response: pb.SearchResponse = await stack.search.Search(
        pb.SearchRequest(query=query, min_sequence=min_sequence, **fields),
        metadata=auth,
        timeout=10,
    )
    return response


async def embedded(stack: Stack, tenant_auth: Metadata, within: float = 10.0) -> None:
    """Waits until every change so far is applied and the tenant has no chunk
    waiting for an embedding."""
    head = await latest_sequence(stack)

    async def caught_up() -> bool:
        status = await stack.search.GetIndexStatus(pb.GetIndexStatusRequest(), metadata=tenant_auth)
        return status.applied_sequence >= head and status.pending_embedding_count == 0

    await eventually(caught_up, within, what=f"index caught up with sequence {head}")


async def latest_sequence(stack: Stack) -> int:
    conn = await asyncpg.connect(stack.owner_dsn)
    try:
        value: int = await conn.fetchval("SELECT coalesce(max(sequence), 0) FROM document.changes")
        return value
    finally:
        await conn.close()


def names(response: pb.SearchResponse) -> list[str]:
    return [r.document_name for r in response.results]


__all__ = ["grpc"]

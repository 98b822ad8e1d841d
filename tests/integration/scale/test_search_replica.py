"""Search reading a streaming replica (PROTOMESH_SEARCH_READ_DATABASE_URL): a hot
standby of the session's PostgreSQL (standby.py) serves the searches while the
indexer writes on the primary; read-your-writes (`min_sequence`) waits for the
standby to replay the index, or says it is behind — never stale results. Replay
is paused and resumed to make the standby's lag visible."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from services.document.service import make_spec as document_spec
from services.platform.config import Settings
from services.platform.db import APP_ROLE, create_pool, with_user
from services.platform.server import app_dsn
from services.search.embedders import HashingEmbedder
from services.search.service import make_spec as search_spec
from services.search.store import Filters, Freshness, IndexBehind, SearchStore
from tests.conftest import Mint, bearer, eventually, running
from tests.integration.conftest import Metadata
from tests.integration.scale.standby import standby_of
from tests.integration.search.conftest import FAST_INDEXER, fresh_database

KEYWORD = pb.SEARCH_MODE_KEYWORD


@dataclasses.dataclass
class Replicated:
    settings: Settings  # the search service's: app DSN on the primary, reads on the standby
    documents: doc_grpc.DocumentServiceStub
    search: pb_grpc.SearchServiceStub
    standby: str  # superuser DSN of the standby's copy of the database


@pytest.fixture(scope="module")
async def replica_db(migrated: str) -> str:
    return await fresh_database(migrated, "replica_it")


@pytest.fixture(scope="module")
def standby(replica_db: str, data_dir: Path) -> Iterator[str]:
    with standby_of(replica_db, data_dir / "standby") as dsn:
        yield dsn


@pytest.fixture(scope="module")
async def replicated(
    settings: Settings, replica_db: str, standby: str
) -> AsyncIterator[Replicated]:
    primary = dataclasses.replace(settings, database_url=replica_db)
    async with running(document_spec(), primary) as (documents, document_channel):
        search_settings = dataclasses.replace(
            primary,
            document_address=f"127.0.0.1:{documents.port}",
            search_read_database_url=with_user(standby, APP_ROLE),
        )
        spec = search_spec(HashingEmbedder, FAST_INDEXER, run_indexer=True)
        async with running(spec, search_settings) as (_, search_channel):
            yield Replicated(
                search_settings,
                doc_grpc.DocumentServiceStub(document_channel),
                pb_grpc.SearchServiceStub(search_channel),
                standby,
            )


@pytest.fixture
def md(mint: Mint) -> Metadata:
    return bearer(mint("t-" + uuid.uuid4().hex[:12]))


async def create(stack: Replicated, md: Metadata, content: str) -> doc_pb.Document:
    document: doc_pb.Document = await stack.documents.CreateDocument(
        doc_pb.CreateDocumentRequest(document=doc_pb.Document(title="w", content=content)),
        metadata=md,
    )
    return document


async def search(
    stack: Replicated, md: Metadata, query: str, min_sequence: int = 0, deadline: float = 10
) -> list[str]:
    response = await stack.search.Search(
        pb.SearchRequest(query=query, min_sequence=min_sequence, mode=KEYWORD),
        metadata=md,
        timeout=deadline,
    )
    return [r.document_name for r in response.results]


async def primary_applied(stack: Replicated, md: Metadata, sequence: int) -> None:
    """Waits until the indexer (on the primary) has applied `sequence`: GetIndexStatus
    reads the primary's checkpoint."""

    async def applied() -> bool:
        status = await stack.search.GetIndexStatus(pb.GetIndexStatusRequest(), metadata=md)
        return status.applied_sequence >= sequence

    await eventually(applied, 10, what=f"the primary's index at {sequence}")


@dataclasses.dataclass
class Replay:
    """Pauses and resumes the standby's WAL replay (it keeps receiving)."""

    standby: str

    async def _call(self, function: str, state: str) -> None:
        conn = await asyncpg.connect(self.standby)
        try:
            await conn.execute(f"SELECT {function}()")
            await eventually(lambda: self._state_is(conn, state), 10, what=f"replay {state}")
        finally:
            await conn.close()

    @staticmethod
    async def _state_is(conn: asyncpg.Connection, state: str) -> bool:
        return bool(await conn.fetchval("SELECT pg_get_wal_replay_pause_state()") == state)

    async def pause(self) -> None:
        await self._call("pg_wal_replay_pause", "paused")

    async def resume(self) -> None:
        await self._call("pg_wal_replay_resume", "not paused")


def error_info(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


async def test_searches_read_the_standby_and_wait_for_it_to_replay_a_write(
    replicated: Replicated, md: Metadata
) -> None:
    stack = replicated
    first = await create(stack, md, "walrus tusks clatter on ice")
    assert await search(stack, md, "walrus", first.sequence) == [first.name]

    replay = Replay(stack.standby)
    await replay.pause()
    try:
        second = await create(stack, md, "narwhal tusks spiral left")
        await primary_applied(stack, md, second.sequence)
        # Indexed on the primary, not yet replayed on the standby: a search without
        # min_sequence reads the standby's older index.
        assert await search(stack, md, "narwhal") == []
        # With min_sequence it never answers from the older index: at its deadline
        # it says how far the standby is.
        with pytest.raises(grpc.aio.AioRpcError) as behind:
            await search(stack, md, "narwhal", second.sequence, deadline=1.5)
        assert behind.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        info = error_info(behind.value)
        assert info.reason == "INDEX_BEHIND"
        assert int(info.metadata["applied_sequence"]) < second.sequence

        # It waits for the standby to catch up within its deadline.
        async def resume_soon() -> None:
            await asyncio.sleep(0.5)
            await replay.resume()

        resuming = asyncio.create_task(resume_soon())
        started = time.monotonic()
        assert await search(stack, md, "narwhal", second.sequence) == [second.name]
        assert time.monotonic() - started >= 0.5
        await resuming
    finally:
        await replay.resume()


async def test_each_read_transaction_checks_the_replica_it_runs_on(
    replicated: Replicated, md: Metadata, mint: Mint
) -> None:
    """A read DSN may balance over several replicas, so the process-wide wait is not
    enough: each read transaction waits until its own server has applied
    min_sequence, or raises IndexBehind at the deadline."""
    stack = replicated
    tenant = "t-" + uuid.uuid4().hex[:12]
    tenant_md = bearer(mint(tenant))
    settings = stack.settings
    primary = await create_pool(app_dsn(settings), 1, 2)
    reads = await create_pool(settings.search_read_database_url, 1, 2)
    store = SearchStore(primary, read_pool=reads)
    replay = Replay(stack.standby)
    try:
        assert store.reads_replica
        await replay.pause()
        written = await create(stack, tenant_md, "dugong grazes seagrass")
        await primary_applied(stack, tenant_md, written.sequence)
        assert await store.applied_sequence() < written.sequence
        with pytest.raises(IndexBehind):
            await store.keyword_leg(
                tenant, "dugong", 10, Filters(), Freshness(written.sequence, time.monotonic() + 0.3)
            )

        async def resume_soon() -> None:
            await asyncio.sleep(0.3)
            await replay.resume()

        resuming = asyncio.create_task(resume_soon())
        hits = await store.keyword_leg(
            tenant, "dugong", 10, Filters(), Freshness(written.sequence, time.monotonic() + 10)
        )
        assert len(hits) == 1
        await resuming
        assert await store.applied_sequence() >= written.sequence
    finally:
        await replay.resume()
        await primary.close()
        await reads.close()

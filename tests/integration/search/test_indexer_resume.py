"""The indexer's exactly-once effect: crashes between the chunk writes and the
checkpoint roll both back; restarts resume from the checkpoint; a change at or
below the checkpoint is never applied again; two indexers at once still apply
each change once."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest

from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from services.document.feed import WatchOptions
from services.document.service import make_spec as document_spec
from services.platform.config import Settings
from services.platform.db import create_pool, with_user
from services.platform.identity import ServiceIdentity
from services.search.chunking import ChunkingOptions
from services.search.embedders import HashingEmbedder
from services.search.indexer import Indexer, IndexerOptions
from services.search.store import SearchStore
from tests.conftest import Mint, bearer, running
from tests.integration.search.conftest import fresh_database

OPTIONS = IndexerOptions(
    chunking=ChunkingOptions(max_tokens=8, overlap_tokens=2, min_body_tokens=1),
    reconnect_base_seconds=0.01,
    reconnect_cap_seconds=0.05,
)


class Crash(Exception):
    pass


class CrashingIndexer(Indexer):
    """Raises inside the apply transaction (after the chunk writes) for chosen sequences."""

    crash_at: set[int]
    applied_log: list[int]

    async def before_commit(self, change: doc_pb.DocumentChange) -> None:
        if change.sequence in self.crash_at:
            self.crash_at.discard(change.sequence)
            raise Crash(change.sequence)
        self.applied_log.append(change.sequence)


@pytest.fixture(scope="module")
async def env(settings: Settings, migrated: str) -> AsyncIterator[tuple[Settings, str, object]]:
    dsn = await fresh_database(migrated, "search_resume")
    local = dataclasses.replace(settings, database_url=dsn)
    async with running(document_spec(WatchOptions(heartbeat_seconds=0.2)), local) as (
        _server,
        channel,
    ):
        yield local, dsn, channel


def opener(settings: Settings, channel: object) -> object:
    stub = doc_grpc.DocumentServiceStub(channel)  # type: ignore[arg-type]
    identity = ServiceIdentity(settings, "search")

    async def open_feed(after: int) -> AsyncIterator[doc_pb.WatchChangesResponse]:
        call = stub.WatchChanges(
            doc_pb.WatchChangesRequest(after_sequence=after, all_tenants=True),
            metadata=bearer(identity.token()),
        )
        try:
            async for message in call:
                yield message
        finally:
            call.cancel()

    return open_feed


async def expected_state(owner: asyncpg.Connection) -> tuple[int, int]:
    head = await owner.fetchval("SELECT coalesce(max(sequence), 0) FROM document.changes")
    docs = await owner.fetchval("SELECT count(*) FROM document.documents")
    return head, docs


async def test_crashes_and_restarts_apply_every_change_exactly_once(
    env: tuple[Settings, str, object], mint: Mint
) -> None:
    settings, dsn, channel = env
    stub = doc_grpc.DocumentServiceStub(channel)  # type: ignore[arg-type]
    auth = bearer(mint("resume-tenant"))
    text = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen."
    for i in range(12):
        await stub.CreateDocument(
            doc_pb.CreateDocumentRequest(
                document_id=f"d{i}", document=doc_pb.Document(content=text)
            ),
            metadata=auth,
        )
    for i in range(0, 12, 3):
        await stub.DeleteDocument(
            doc_pb.DeleteDocumentRequest(name=f"documents/d{i}"), metadata=auth
        )
    owner = await asyncpg.connect(dsn)
    pool = await create_pool(with_user(dsn, "protomesh_app"), 1, 4)
    try:
        head, live_docs = await expected_state(owner)
        store = SearchStore(pool)
        applied_log: list[int] = []
        crash_at = {3, 7, 13, head}
        # Each incarnation runs until it crashes; then a new one starts from the checkpoint.
        for _ in range(10):
            indexer = CrashingIndexer(store, HashingEmbedder(), opener(settings, channel), OPTIONS)  # type: ignore[arg-type]
            indexer.crash_at, indexer.applied_log = crash_at, applied_log
            checkpoint = (await store.checkpoint()).applied_sequence
            crashed = False
            try:
                async for message in indexer.open_feed(checkpoint):  # type: ignore[operator]
                    await indexer.handle(message)
                    if (await store.checkpoint()).applied_sequence >= head:
                        break
            except Crash:
                crashed = True
            if not crashed:
                break
        assert (await store.checkpoint()).applied_sequence == head
        assert sorted(applied_log) == sorted(set(applied_log))  # nothing applied twice
        assert len(applied_log) == head  # and nothing skipped
        rows = await owner.fetch(
            "SELECT document_name, count(*) AS n, array_agg(ordinal ORDER BY ordinal) AS o "
            "FROM search.chunks GROUP BY document_name"
        )
        assert len(rows) == live_docs
        for row in rows:
            assert list(row["o"]) == list(range(row["n"]))
        # Re-delivering an applied change is a no-op.
        again = doc_pb.DocumentChange(
            sequence=1,
            type=doc_pb.CHANGE_TYPE_DELETED,
            document_name="documents/d1",
            tenant_id="resume-tenant",
        )
        assert await indexer.apply(again) is False
        assert (
            await owner.fetchval(
                "SELECT count(*) FROM search.chunks WHERE document_name = 'documents/d1'"
            )
            > 0
        )

        # Two indexers racing over the same new changes still apply each once.
        for i in range(12, 20):
            await stub.CreateDocument(
                doc_pb.CreateDocumentRequest(
                    document_id=f"d{i}", document=doc_pb.Document(content=text)
                ),
                metadata=auth,
            )
        head, live_docs = await expected_state(owner)
        racers_log: list[int] = []
        racers = []
        for _ in range(2):
            racer = CrashingIndexer(store, HashingEmbedder(), opener(settings, channel), OPTIONS)  # type: ignore[arg-type]
            racer.crash_at, racer.applied_log = set(), racers_log
            racers.append(asyncio.create_task(racer.run_feed()))
        async with asyncio.timeout(10):
            while (await store.checkpoint()).applied_sequence < head:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        for task in racers:
            task.cancel()
        await asyncio.gather(*racers, return_exceptions=True)
        assert sorted(racers_log) == sorted(set(racers_log))
        assert (
            await owner.fetchval("SELECT count(DISTINCT document_name) FROM search.chunks")
            == live_docs
        )
    finally:
        await pool.close()
        await owner.close()


def change(sequence: int, name: str, content: str = "") -> doc_pb.DocumentChange:
    kind = doc_pb.CHANGE_TYPE_DELETED if not content else doc_pb.CHANGE_TYPE_CREATED
    message = doc_pb.DocumentChange(
        sequence=sequence, type=kind, document_name=name, tenant_id="batch-tenant"
    )
    if content:
        message.document.name = name
        message.document.content = content
        message.document.update_time.GetCurrentTime()
    return message


async def test_a_batch_of_changes_commits_whole_or_not_at_all(migrated: str) -> None:
    dsn = await fresh_database(migrated, "search_batch")
    pool = await create_pool(with_user(dsn, "protomesh_app"), 1, 2)
    owner = await asyncpg.connect(dsn)
    try:
        store = SearchStore(pool)
        indexer = CrashingIndexer(store, HashingEmbedder(), None, OPTIONS)  # type: ignore[arg-type]
        indexer.crash_at, indexer.applied_log = {3}, []
        batch = [
            change(1, "documents/a", "Alpha words here."),
            change(2, "documents/b", "Bravo words here."),
            change(3, "documents/c", "Charlie words here."),
            change(4, "documents/a"),  # deleted again
        ]

        with pytest.raises(Crash):
            await indexer.apply_all(batch)
        # The changes before the crash were rolled back with it.
        assert (await store.checkpoint()).applied_sequence == 0
        assert await owner.fetchval("SELECT count(*) FROM search.chunks") == 0

        assert await indexer.apply_all(batch) == 4
        assert (await store.checkpoint()).applied_sequence == 4
        names = await owner.fetch("SELECT DISTINCT document_name FROM search.chunks ORDER BY 1")
        assert [r["document_name"] for r in names] == ["documents/b", "documents/c"]
        # Re-delivered with one new change behind it: only the new one is applied.
        assert await indexer.apply_all([*batch, change(5, "documents/b")]) == 1
        assert (await store.checkpoint()).applied_sequence == 5
    finally:
        await owner.close()
        await pool.close()

"""ReindexTenant after a chunker change: a tenant indexed by an older chunker is
re-chunked from the documents service and stays searchable (both legs) while
it is rebuilt; other tenants are left alone; a document rewritten by the feed
during the rebuild keeps the feed's version."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import grpc
import pytest

from protomesh.search.v1 import search_service_pb2 as pb
from services.search.chunking import CHUNKER_VERSION
from tests.conftest import ALL_SCOPES
from tests.integration.conftest import Metadata
from tests.integration.search.conftest import Stack, embedded, names, put, search

KEYWORD, VECTOR = pb.SEARCH_MODE_KEYWORD, pb.SEARCH_MODE_VECTOR
GUIDE = (
    "# Operations guide\n\n"
    "## Backups\n\n"
    + " ".join(f"Backup step {i} copies the walrus archive to cold storage." for i in range(30))
    + "\n\n## Restores\n\n"
    + " ".join(f"Restore step {i} brings the narwhal cluster back online." for i in range(30))
)


async def make_outdated(stack: Stack, tenant: str) -> None:
    """Rewrites the tenant's chunks as an old chunker would have left them: one
    chunk per document holding the whole text, marked version 1."""
    conn = await asyncpg.connect(stack.owner_dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM search.chunks WHERE tenant_id = $1 AND ordinal > 0", tenant
            )
            await conn.execute(
                "UPDATE search.chunks SET chunker_version = 1, text = 'old ' || text "
                "WHERE tenant_id = $1",
                tenant,
            )
    finally:
        await conn.close()


async def chunk_rows(stack: Stack, tenant: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.owner_dsn)
    try:
        return await conn.fetch(
            "SELECT document_name, ordinal, chunker_version, embedding IS NOT NULL AS embedded,"
            " text FROM search.chunks WHERE tenant_id = $1 ORDER BY document_name, ordinal",
            tenant,
        )
    finally:
        await conn.close()


async def status(stack: Stack, auth: Metadata) -> pb.IndexStatus:
    result: pb.IndexStatus = await stack.search.GetIndexStatus(
        pb.GetIndexStatusRequest(), metadata=auth
    )
    return result


async def test_an_outdated_tenant_is_rebuilt_and_searchable_throughout(
    stack: Stack, tenant: str, auth: Metadata, as_tenant: Callable[..., Metadata]
) -> None:
    other = as_tenant(tenant + "-other")
    for i in range(6):
        await put(stack, auth, f"guide-{i}", GUIDE, title="Operations guide")
    await put(stack, other, "bystander", "A bystander document about walrus archives.")
    await embedded(stack, auth)
    await embedded(stack, other)
    await make_outdated(stack, tenant)
    await make_outdated(stack, tenant + "-other")
    before = await status(stack, auth)
    assert before.chunker_version == CHUNKER_VERSION
    assert before.outdated_document_count == 6
    assert before.rebuild_pending_document_count == 0  # nobody asked yet

    misses: list[str] = []
    stop = asyncio.Event()

    async def keep_searching() -> None:
        while not stop.is_set():
            for mode in (KEYWORD, VECTOR):
                found = await search(stack, auth, "walrus archive cold storage", mode=mode)
                if found.degraded or len(set(names(found))) < 6:
                    misses.append(f"{pb.SearchMode.Name(mode)}: {names(found)}")
            await asyncio.sleep(0.01)

    searching = asyncio.create_task(keep_searching())
    try:
        queued = await stack.search.ReindexTenant(pb.ReindexTenantRequest(), metadata=auth)
        assert queued.rebuild_document_count == 6
        async with asyncio.timeout(30):
            while (current := await status(stack, auth)).outdated_document_count:
                assert current.rebuild_pending_document_count == current.outdated_document_count
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await searching
    assert misses == []

    rows = await chunk_rows(stack, tenant)
    assert {r["chunker_version"] for r in rows} == {CHUNKER_VERSION}
    assert all(r["embedded"] for r in rows)
    assert not any(r["text"].startswith("old ") for r in rows)
    per_document = [r for r in rows if r["document_name"] == "documents/guide-0"]
    assert len(per_document) > 2  # the guide is cut into sections and windows again
    assert per_document[0]["text"].startswith("Backups\n")
    assert any(r["text"].startswith("Restores\n") for r in per_document)
    after = await status(stack, auth)
    assert (after.outdated_document_count, after.rebuild_pending_document_count) == (0, 0)
    assert after.pending_embedding_count == 0

    # The other tenant did not ask: its chunks are untouched.
    bystander = await chunk_rows(stack, tenant + "-other")
    assert [r["chunker_version"] for r in bystander] == [1]
    assert (await status(stack, other)).outdated_document_count == 1


async def test_reindex_without_outdated_documents_only_queues_embeddings(
    stack: Stack, auth: Metadata
) -> None:
    await put(stack, auth, "fresh", "A current document about puffins.")
    await embedded(stack, auth)
    queued = await stack.search.ReindexTenant(pb.ReindexTenantRequest(), metadata=auth)
    assert (queued.rebuild_document_count, queued.queued_chunk_count) == (0, 1)
    await embedded(stack, auth)
    found = await search(stack, auth, "puffins", mode=VECTOR)
    assert names(found)[:1] == ["documents/fresh"]


async def test_reindex_needs_the_admin_scope(
    stack: Stack, tenant: str, as_tenant: Callable[..., Metadata]
) -> None:
    reader = as_tenant(tenant, scopes=ALL_SCOPES.replace("search:admin", "").strip())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.search.ReindexTenant(pb.ReindexTenantRequest(), metadata=reader)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

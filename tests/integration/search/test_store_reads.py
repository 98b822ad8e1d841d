"""The store's read path on real PostgreSQL: the vector leg set up while its vector
is still being computed, chunk rows that keep their vectors in the heap, and legs
that set their tenant for their own statement only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.platform.db import create_pool
from services.platform.server import app_dsn
from services.search.embedders import HashingEmbedder
from services.search.store import Filters, SearchStore
from tests.integration.conftest import Metadata
from tests.integration.search.conftest import Stack, embedded, put


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[SearchStore]:
    pool = await create_pool(app_dsn(stack.settings), 1, 2)
    yield SearchStore(pool)
    await pool.close()


async def test_the_vector_leg_waits_for_its_vector_in_an_open_transaction(
    stack: Stack, auth: Metadata, tenant: str, store: SearchStore
) -> None:
    await put(stack, auth, "gulls", "Herring gulls steal chips on the pier.")
    await put(stack, auth, "terns", "Arctic terns migrate from pole to pole.")
    await embedded(stack, auth)
    [vector] = await HashingEmbedder().embed(["gulls steal chips"])
    direct = await store.vector_leg(tenant, vector, 10, Filters())

    pending: asyncio.Future[list[float] | None] = asyncio.get_running_loop().create_future()
    leg = asyncio.ensure_future(store.vector_leg(tenant, pending, 10, Filters()))
    await asyncio.sleep(0.2)
    assert not leg.done()  # set up and waiting for the vector
    pending.set_result(vector)
    assert await leg == direct
    assert direct is not None
    assert len(direct) == 2


async def test_the_vector_leg_without_a_vector_returns_none(
    stack: Stack, tenant: str, store: SearchStore
) -> None:
    nothing: asyncio.Future[list[float] | None] = asyncio.get_running_loop().create_future()
    nothing.set_result(None)
    assert await store.vector_leg(tenant, nothing, 10, Filters()) is None


async def test_chunk_rows_keep_their_vectors_in_the_heap(stack: Stack, auth: Metadata) -> None:
    sentences = " ".join(f"Paragraph {i} on tidal pools and their many snails." for i in range(60))
    document = await put(stack, auth, "tides", sentences, title="Tides")
    await embedded(stack, auth)
    conn = await asyncpg.connect(stack.owner_dsn)
    try:
        options = await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE oid = 'search.chunks'::regclass"
        )
        rows = await conn.fetch(
            "SELECT pg_column_size(c.*) AS size, pg_column_toast_chunk_id(c.embedding) AS toast "
            "FROM search.chunks c WHERE document_name = $1",
            document.name,
        )
    finally:
        await conn.close()
    assert "toast_tuple_target=8160" in options
    assert len(rows) > 1
    assert any(r["size"] > 2032 for r in rows)  # above the default TOAST target
    assert all(r["toast"] is None for r in rows)  # and still not moved out


async def test_a_leg_sets_its_tenant_for_its_own_statement_only(
    stack: Stack, auth: Metadata, tenant: str, store: SearchStore
) -> None:
    await put(stack, auth, "otters", "Sea otters hold hands while they sleep.")
    await embedded(stack, auth)
    [vector] = await HashingEmbedder().embed(["otters hold hands"])

    mine = await store.keyword_leg(tenant, "otters", 10, Filters())
    others = await store.keyword_leg(f"{tenant}-other", "otters", 10, Filters())
    page = await store.page_rows(f"{tenant}-other", [hit.key for hit in mine], "otters")
    their_vectors = await store.vector_leg(f"{tenant}-other", vector, 10, Filters())

    assert len(mine) == 1
    assert others == []
    assert page == {}  # another tenant cannot read the rows even by their ids
    assert their_vectors == []
    async with store.read_pool.acquire() as conn:
        # The pooled connection the legs ran on keeps no tenant afterwards.
        assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") in ("", None)

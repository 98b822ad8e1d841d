"""Row-level security of `search.chunks`, checked as the application role with no
WHERE clause of our own: isolation does not depend on the queries' conditions, and
the indexer's cross-tenant policy belongs to its role alone (the app role may
switch to it, but does not inherit it)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from services.platform.db import create_pool, tenant_transaction
from services.platform.server import app_dsn
from services.search.store import INDEXER_ROLE
from tests.integration.conftest import Metadata
from tests.integration.search.conftest import Stack, put


@pytest.fixture
async def app_pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(app_dsn(stack.settings), 1, 2)
    yield pool
    await pool.close()


async def chunk_tenants(conn: asyncpg.Connection) -> set[str]:
    return {
        r["tenant_id"] for r in await conn.fetch("SELECT DISTINCT tenant_id FROM search.chunks")
    }


async def indexed(app_pool: asyncpg.Pool, tenant: str) -> None:
    for _ in range(100):
        async with tenant_transaction(app_pool, tenant) as conn:
            if await chunk_tenants(conn):
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{tenant}'s chunks never appeared")


async def test_the_app_role_sees_only_the_tenant_it_set(
    stack: Stack, app_pool: asyncpg.Pool, as_tenant: Callable[..., Metadata]
) -> None:
    first, second = "rls-a-" + uuid.uuid4().hex[:6], "rls-b-" + uuid.uuid4().hex[:6]
    await put(stack, as_tenant(first), "one", "lighthouse keepers trim the lamp")
    await put(stack, as_tenant(second), "two", "harbour pilots guide the ships")
    await indexed(app_pool, first)
    await indexed(app_pool, second)

    async with tenant_transaction(app_pool, first) as conn:
        assert await chunk_tenants(conn) == {first}
    async with app_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM search.chunks") == 0  # no tenant set
    async with app_pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {INDEXER_ROLE}")
        assert {first, second} <= await chunk_tenants(conn)


async def test_the_app_role_does_not_inherit_the_indexer_policy(app_pool: asyncpg.Pool) -> None:
    async with app_pool.acquire() as conn:
        inherits = await conn.fetchval(
            "SELECT pg_has_role(current_user, $1, 'USAGE')", INDEXER_ROLE
        )
        can_switch = await conn.fetchval(
            "SELECT pg_has_role(current_user, $1, 'SET')", INDEXER_ROLE
        )
    assert inherits is False
    assert can_switch is True

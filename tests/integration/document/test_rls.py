"""Row-level security of the `document` schema, checked as the application
role directly: isolation does not depend on the servicer's WHERE clauses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from protomesh.document.v1 import document_service_pb2 as pb
from services.platform.db import create_pool, settings_transaction, tenant_transaction
from services.platform.server import app_dsn
from tests.integration.document.conftest import new_doc


@pytest.fixture
async def pool(settings) -> AsyncIterator[asyncpg.Pool]:  # type: ignore[no-untyped-def]
    app_pool = await create_pool(app_dsn(settings), 1, 2)
    yield app_pool
    await app_pool.close()


@pytest.fixture
async def stored(stub, auth) -> pb.Document:  # type: ignore[no-untyped-def]
    return await stub.CreateDocument(  # type: ignore[no-any-return]
        pb.CreateDocumentRequest(document=new_doc("rls")), metadata=auth
    )


async def test_no_tenant_set_sees_no_rows(pool, stored) -> None:
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM document.documents") == 0
        assert await conn.fetchval("SELECT count(*) FROM document.changes") == 0


async def test_a_tenant_sees_only_its_rows_and_cannot_write_anothers(pool, tenant, stored) -> None:
    async with tenant_transaction(pool, tenant) as conn:
        tenants = await conn.fetch("SELECT DISTINCT tenant_id FROM document.documents")
        assert [r["tenant_id"] for r in tenants] == [tenant]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(pool, tenant) as conn:
            await conn.execute(
                "INSERT INTO document.changes (tenant_id, document_id, change_type) "
                "VALUES ('someone-else', 'x', 1)"
            )


async def test_watch_all_setting_reads_every_tenants_changes_but_no_documents(
    pool, tenant, stored
) -> None:
    async with settings_transaction(pool, watch_all="on") as conn:
        seen = await conn.fetchval(
            "SELECT count(*) FROM document.changes WHERE tenant_id = $1", tenant
        )
        assert seen == 1
        assert await conn.fetchval("SELECT count(*) FROM document.documents") == 0


async def test_tables_force_row_level_security(pool) -> None:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relnamespace = 'document'::regnamespace AND relkind = 'r'"
        )
    assert {r["relname"] for r in rows} == {"documents", "changes"}
    assert all(r["relrowsecurity"] and r["relforcerowsecurity"] for r in rows)

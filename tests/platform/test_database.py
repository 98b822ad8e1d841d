"""Migrations and row-level security against the real embedded PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.platform.db import APP_ROLE, create_pool, tenant_transaction, with_user
from services.platform.migrations import migrate


async def test_migrations_are_idempotent(migrated: str) -> None:
    assert await migrate(migrated) == []


async def test_concurrent_migration_runs_are_safe(migrated: str) -> None:
    results = await asyncio.gather(*(migrate(migrated) for _ in range(4)))
    assert all(applied == [] for applied in results)


async def test_app_role_cannot_bypass_row_level_security(migrated: str) -> None:
    owner = await asyncpg.connect(migrated)
    try:
        row = await owner.fetchrow(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", APP_ROLE
        )
        assert row is not None
        assert not row["rolsuper"]
        assert not row["rolbypassrls"]
    finally:
        await owner.close()


@pytest.fixture(scope="module")
async def rls_table(migrated: str) -> str:
    owner = await asyncpg.connect(migrated)
    try:
        await owner.execute(
            """
            CREATE SCHEMA IF NOT EXISTS rlstest;
            CREATE TABLE IF NOT EXISTS rlstest.notes (tenant_id text NOT NULL, body text);
            ALTER TABLE rlstest.notes ENABLE ROW LEVEL SECURITY;
            ALTER TABLE rlstest.notes FORCE ROW LEVEL SECURITY;
            DROP POLICY IF EXISTS tenant ON rlstest.notes;
            CREATE POLICY tenant ON rlstest.notes
              USING (tenant_id = current_setting('app.tenant_id', true))
              WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
            GRANT USAGE ON SCHEMA rlstest TO protomesh_app;
            GRANT SELECT, INSERT ON rlstest.notes TO protomesh_app;
            """
        )
    finally:
        await owner.close()
    return with_user(migrated, APP_ROLE)


async def test_tenant_sees_only_its_rows_and_no_tenant_sees_nothing(rls_table: str) -> None:
    pool = await create_pool(rls_table, 1, 2)
    try:
        async with tenant_transaction(pool, "t1") as conn:
            await conn.execute("INSERT INTO rlstest.notes VALUES ('t1', 'mine')")
        async with tenant_transaction(pool, "t2") as conn:
            assert await conn.fetch("SELECT * FROM rlstest.notes") == []
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("INSERT INTO rlstest.notes VALUES ('t1', 'forged')")
        async with pool.acquire() as conn:
            assert await conn.fetch("SELECT * FROM rlstest.notes") == []
        async with tenant_transaction(pool, "t1") as conn:
            assert [r["body"] for r in await conn.fetch("SELECT body FROM rlstest.notes")] == [
                "mine"
            ]
    finally:
        await pool.close()


async def test_tenant_setting_does_not_leak_to_the_next_transaction(rls_table: str) -> None:
    pool = await create_pool(rls_table, 1, 1)
    try:
        async with tenant_transaction(pool, "t1") as conn:
            await conn.execute("INSERT INTO rlstest.notes VALUES ('t1', 'again')")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") in (
                "",
                None,
            )
            assert await conn.fetch("SELECT * FROM rlstest.notes") == []
    finally:
        await pool.close()

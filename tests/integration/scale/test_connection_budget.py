"""The connection budget's per-process counts (`process_connections` in
tests/unit/test_deploy_manifests.py, the table in docs/scaling.md) are what the
services really open: each service runs with its pools at their maximum from the
start (DB_POOL_MIN = DB_POOL_MAX), and PostgreSQL counts its backends."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest

from services.cost.service import make_spec as cost_spec
from services.document.service import make_spec as document_spec
from services.platform.config import Settings
from services.platform.server import ServiceSpec, app_dsn
from services.search.embedders import HashingEmbedder
from services.search.service import make_spec as search_spec
from services.task.service import make_spec as task_spec
from tests.conftest import eventually, running
from tests.integration.search.conftest import fresh_database
from tests.unit.test_deploy_manifests import process_connections

DATABASE = "budget_it"
POOL = 3


@pytest.fixture(scope="module")
async def budget_db(migrated: str) -> str:
    return await fresh_database(migrated, DATABASE)


async def backends(owner_dsn: str) -> int:
    conn = await asyncpg.connect(owner_dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = 'protomesh_app'",
            DATABASE,
        )
        return count
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("module", "spec", "read_pool"),
    [
        ("services.document", document_spec, False),
        ("services.task", task_spec, False),
        ("services.cost", cost_spec, False),
        ("services.search", lambda: search_spec(HashingEmbedder, run_indexer=False), True),
    ],
)
async def test_a_service_opens_what_the_budget_counts(
    settings: Settings, budget_db: str, module: str, spec: object, read_pool: bool
) -> None:
    local = dataclasses.replace(
        settings, database_url=budget_db, db_pool_min=POOL, db_pool_max=POOL
    )
    if read_pool:  # a second pool, as on a replica (here: the same server)
        local = dataclasses.replace(local, search_read_database_url=app_dsn(local))
    expected = sum(process_connections(["python", "-m", module], local).values())
    assert callable(spec)
    built: ServiceSpec = spec()
    assert await backends(budget_db) == 0
    async with running(built, local):
        await eventually(
            lambda: _equals(budget_db, expected), 10, what=f"{module}: {expected} backends"
        )
        await asyncio.sleep(0.5)  # and no more after the background loops settle
        assert await backends(budget_db) == expected
    await eventually(lambda: _equals(budget_db, 0), 10, what=f"{module} closed its connections")


async def _equals(owner_dsn: str, expected: int) -> bool:
    return await backends(owner_dsn) == expected

"""The services through a real PgBouncer in transaction mode (Debian's package,
see pgbouncer.py), in a database of their own on the session's PostgreSQL: the
request pools go through PgBouncer, the LISTEN connections and the task
worker's sessions go direct (PROTOMESH_DIRECT_DATABASE_URL), as in
deploy/kubernetes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from services.cost.service import make_spec as cost_spec
from services.document.service import make_spec as document_spec
from services.platform.config import Settings, WorkerSettings
from services.platform.server import app_dsn
from services.search.embedders import HashingEmbedder
from services.search.service import make_spec as search_spec
from services.task.extractive import ExtractiveGenerator
from services.task.service import make_spec as task_spec
from services.task.worker import build_worker, create_worker_pool
from tests.conftest import running
from tests.integration.scale import pgbouncer
from tests.integration.search.conftest import FAST_INDEXER, fresh_database

DATABASE = "bouncer_it"
POOL_SIZE = 4  # PgBouncer's server connections for all four services together
WORKER = WorkerSettings(
    count=2, lease_seconds=5.0, heartbeat_seconds=1.0, poll_seconds=1.0, reap_seconds=1.0
)


@pytest.fixture(scope="session")
def bouncer_binary(data_dir: Path) -> pgbouncer.Binary:
    return pgbouncer.unpack(data_dir / "pgbouncer-pkg")


@pytest.fixture(scope="module")
async def bouncer_db(migrated: str) -> str:
    """Owner DSN of a fresh, migrated database for these tests."""
    return await fresh_database(migrated, DATABASE)


@pytest.fixture(scope="module")
def bouncer(
    bouncer_binary: pgbouncer.Binary, bouncer_db: str, data_dir: Path
) -> Iterator[pgbouncer.PgBouncer]:
    """`bouncer_it` with POOL_SIZE server connections, and `solo`, the same database
    with one server connection that every client shares."""
    settings = {}
    if bouncer_binary.keeps_prepared_statements:
        settings["max_prepared_statements"] = "200"
    with pgbouncer.running(
        bouncer_binary,
        data_dir / "pgbouncer",
        bouncer_db,
        {
            DATABASE: f"dbname={DATABASE} pool_size={POOL_SIZE}",
            "solo": f"dbname={DATABASE} pool_size=1",
        },
        settings,
    ) as running_bouncer:
        yield running_bouncer


@pytest.fixture(scope="module")
def pooled_settings(settings: Settings, bouncer: pgbouncer.PgBouncer, bouncer_db: str) -> Settings:
    """Settings as in deploy/kubernetes: requests through PgBouncer, sessions direct.
    asyncpg's statement cache stays on only where PgBouncer keeps prepared statements."""
    owner = dataclasses.replace(settings, database_url=bouncer_db)
    return dataclasses.replace(
        owner,
        app_database_url=bouncer.dsn("protomesh_app", DATABASE),
        direct_database_url=app_dsn(owner),
        db_statement_cache_size=100 if bouncer.binary.keeps_prepared_statements else 0,
        db_pool_min=1,
    )


@dataclasses.dataclass
class Mesh:
    settings: Settings
    documents: grpc.aio.Channel
    search: grpc.aio.Channel
    tasks: grpc.aio.Channel
    cost: grpc.aio.Channel
    owner_dsn: str


@pytest.fixture(scope="module")
async def mesh(pooled_settings: Settings, bouncer_db: str) -> AsyncIterator[Mesh]:
    """The four services on PgBouncer, and a task worker on the direct DSN."""
    settings = pooled_settings
    async with running(document_spec(), settings) as (documents, document_channel):
        settings = dataclasses.replace(settings, document_address=f"127.0.0.1:{documents.port}")
        async with (
            running(search_spec(HashingEmbedder, FAST_INDEXER, run_indexer=True), settings) as (
                search,
                search_channel,
            ),
            running(cost_spec(), settings) as (cost, cost_channel),
            running(task_spec(), settings) as (_, task_channel),
        ):
            settings = dataclasses.replace(
                settings,
                search_address=f"127.0.0.1:{search.port}",
                cost_address=f"127.0.0.1:{cost.port}",
            )
            # Task workers hold their sessions on the primary (deploy/kubernetes:
            # task-worker.yaml gives them the direct DSN as their app DSN).
            worker_settings = dataclasses.replace(
                settings, app_database_url=settings.direct_database_url
            )
            pool = await create_worker_pool(worker_settings, WORKER.count + 2)
            worker, clients = build_worker(pool, worker_settings, WORKER, ExtractiveGenerator())
            worker.start()
            try:
                yield Mesh(
                    settings,
                    document_channel,
                    search_channel,
                    task_channel,
                    cost_channel,
                    bouncer_db,
                )
            finally:
                await worker.stop()
                await clients.close()
                await pool.close()

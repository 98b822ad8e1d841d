"""PostgreSQL access: asyncpg pools and tenant-scoped transactions.

Services connect as the application role `protomesh_app` (NOSUPERUSER,
NOBYPASSRLS) and every tenant table has FORCE ROW LEVEL SECURITY with a policy on
`current_setting('app.tenant_id', true)`. `tenant_transaction` sets that value
for one transaction only (`set_config(..., true)`), so a pooled connection never
carries a tenant into the next request, and a query outside such a transaction
sees no tenant rows at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
from pgvector.asyncpg import register_vector

APP_ROLE = "protomesh_app"

Connection: TypeAlias = asyncpg.Connection
Pool: TypeAlias = asyncpg.Pool


def named_queries(path: Path) -> dict[str, str]:
    """The `-- name: x` blocks of a .sql file, by name: each service keeps its SQL in
    `sql/queries.sql`, reviewable on its own, and its store calls it by name. A
    block runs from its name line to the next one (comments included; a trailing
    semicolon dropped)."""
    queries: dict[str, str] = {}
    for block in re.split(r"^-- name: ", path.read_text(), flags=re.MULTILINE)[1:]:
        name, _, body = block.partition("\n")
        queries[name.strip()] = body.strip().rstrip(";")
    return queries


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    # Vectors as pgvector's binary format (lists, ndarrays or pgvector.Vector in;
    # pgvector.Vector out): ~100x cheaper to encode than text literals, and half
    # the vector leg's time at small tables (bench/vector_codec.py). A database
    # without the extension yet (before the platform bootstrap) has no type.
    try:
        await register_vector(conn)
    except ValueError as exc:
        if "unknown type" not in str(exc):
            raise


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10, **kwargs: Any) -> Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kwargs
    )
    assert pool is not None
    return pool  # type: ignore[no-any-return]


@asynccontextmanager
async def tenant_transaction(pool: Pool, tenant_id: str) -> AsyncIterator[Connection]:
    """A transaction in which row-level security admits `tenant_id`'s rows only."""
    if not tenant_id:
        raise ValueError("tenant_transaction needs a tenant")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant_id)
        yield conn


@asynccontextmanager
async def settings_transaction(pool: Pool, **settings: str) -> AsyncIterator[Connection]:
    """A transaction with `app.<name>` settings, e.g. `indexer='on'` for a trusted
    cross-tenant worker whose tables have a policy for it."""
    async with pool.acquire() as conn, conn.transaction():
        for name, value in settings.items():
            await conn.execute("SELECT set_config($1, $2, true)", f"app.{name}", value)
        yield conn


def with_user(dsn: str, user: str, password: str = "") -> str:
    """The same DSN with another user (e.g. the application role)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    auth = quote(user) + (f":{quote(password)}" if password else "")
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))

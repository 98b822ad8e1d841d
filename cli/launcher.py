"""`protomesh up`: one command that runs the whole system on this machine.

Starts embedded PostgreSQL (unless `PROTOMESH_DATABASE_URL` points elsewhere),
migrates, launches every service, the task workers and the gateway as separate
processes, waits until each reports healthy, prints the endpoints, and on
Ctrl-C (or SIGTERM) stops the children gracefully, then PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.platform.config import Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key
from services.platform.migrations import migrate

SERVICES = ("document", "search", "task", "cost")
STARTUP_TIMEOUT_SECONDS = 90.0


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: object | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log_path.open("ab")
        self.log_file = handle
        self.process = subprocess.Popen(
            self.argv, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now (for tests, benches)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


UP_METRICS_PORT_BASE = 9101  # where `protomesh up` serves /metrics unless configured


def plan_children(settings: Settings, workers: int) -> list[Child]:
    logs = settings.data_dir / "logs"
    python = sys.executable
    children = [
        Child(name, [python, "-m", f"services.{name}"], logs / f"{name}.log") for name in SERVICES
    ]
    if workers > 0:
        children.append(
            Child(
                "task-worker",
                [python, "-m", "services.task.worker", "--count", str(workers)],
                logs / "task-worker.log",
            )
        )
    children.append(Child("gateway", [python, "-m", "gateway"], logs / "gateway.log"))
    return children


async def grpc_serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1.0
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_healthy(settings: Settings, children: list[Child]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    pending = {c.name for c in children if c.name in SERVICES or c.name == "gateway"}
    while pending:
        for child in children:
            code = child.exited()
            if code is not None:
                raise RuntimeError(
                    f"{child.name} exited with code {code}; last log lines:\n{child.log_tail()}"
                )
        for name in sorted(pending):
            if name == "gateway":
                ok = http_healthy(f"{settings.gateway_url}/healthz")
            else:
                ok = asyncio.run(grpc_serving(settings.address_of(name)))
            if ok:
                pending.discard(name)
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {', '.join(sorted(pending))} to be healthy")
        if pending:
            time.sleep(0.2)


def stop_children(children: list[Child], grace: float) -> None:
    for child in children:
        if child.process is not None and child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace + 2
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


@dataclass
class System:
    """A running protomesh: PostgreSQL plus child processes."""

    settings: Settings
    children: list[Child]
    postgres: EmbeddedPostgres | None
    database_url: str

    def stop(self) -> None:
        stop_children(self.children, self.settings.grace_period_seconds)
        if self.postgres is not None:
            self.postgres.stop()


def start_system(settings: Settings, workers: int = 2) -> System:
    """Brings everything up and returns once all of it is healthy. Each child gets
    `settings` (as the variables that rebuild them) over this process's environment,
    so a flag such as `--data-dir` reaches every process."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_dev_key(settings.data_dir)
    postgres = None
    database_url = settings.database_url
    if not database_url:
        postgres = EmbeddedPostgres(settings.data_dir / "pg")
        database_url = postgres.start()
    asyncio.run(migrate(database_url))
    env = {
        **os.environ,
        **settings.to_env(),
        "PROTOMESH_DATABASE_URL": database_url,
        "PROTOMESH_DATA_DIR": str(settings.data_dir.resolve()),
        "PROTOMESH_METRICS_PORT_BASE": str(settings.metrics_port_base or UP_METRICS_PORT_BASE),
    }
    children = plan_children(settings, workers)
    system = System(settings, children, postgres, database_url)
    try:
        for child in children:
            child.start(env)
        wait_healthy(settings, children)
    except BaseException:
        system.stop()
        raise
    return system


def wait_for_signal() -> None:
    """Blocks until SIGINT or SIGTERM."""
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not received:
            time.sleep(0.2)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

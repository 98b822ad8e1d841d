"""`protomesh up`: one command that runs the whole system on this machine.

Starts embedded PostgreSQL (unless `PROTOMESH_DATABASE_URL` points elsewhere),
migrates, launches every service, the task workers and the gateway as separate
processes, waits until each reports healthy, prints the endpoints, and on
Ctrl-C (or SIGTERM) stops the children gracefully, then PostgreSQL. With
`--tls` every hop speaks TLS with certificates from a dev CA in the data dir.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.platform.catalog import PROTOMESH_SERVICES
from services.platform.channels import Dialer
from services.platform.config import Settings, reachable
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key
from services.platform.migrations import migrate
from services.platform.tls import DevCertificates, ensure_dev_certificates, https_verification

SERVICES = ("document", "search", "task", "cost")
STARTUP_TIMEOUT_SECONDS = 90.0


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    # The gRPC address (a service) or URL (the gateway) that says it is healthy.
    health: str = ""
    env: dict[str, str] = field(default_factory=dict)  # on top of the system's
    process: subprocess.Popen[bytes] | None = None
    log_file: object | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log_path.open("ab")
        self.log_file = handle
        self.process = subprocess.Popen(
            self.argv,
            env={**env, **self.env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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


def replica_name(component: str, replica: int, replicas: int) -> str:
    """`document` with one replica; `document.0`, `document.1`, … with several."""
    return component if replicas <= 1 else f"{component}.{replica}"


def plan_children(settings: Settings, workers: int) -> list[Child]:
    """Every process: `settings.replicas` of each service and of the task workers
    (replica i serves on its port + 100·i; only replica 0 of search runs the
    indexer), and the gateway."""
    logs = settings.data_dir / "logs"
    python = sys.executable
    replicas = max(1, settings.replicas)
    children = []
    for name in SERVICES:
        for i in range(replicas):
            env = {"PROTOMESH_REPLICA": str(i)}
            if name == "search" and i > 0:
                env["PROTOMESH_SEARCH_INDEXER"] = "off"
            label = replica_name(name, i, replicas)
            command = [python, "-m", f"services.{name}"]
            health = settings.replica_address(name, i)
            children.append(Child(label, command, logs / f"{label}.log", health, env))
    for i in range(replicas if workers > 0 else 0):
        label = replica_name("task-worker", i, replicas)
        command = [python, "-m", "services.task.worker", "--count", str(workers)]
        env = {"PROTOMESH_REPLICA": str(i)}
        children.append(Child(label, command, logs / f"{label}.log", env=env))
    gateway = [python, "-m", "gateway"]
    children.append(Child("gateway", gateway, logs / "gateway.log", settings.gateway_url))
    return children


async def grpc_serving(address: str, dialer: Dialer | None = None) -> bool:
    """Whether the server at `address` (one replica) reports SERVING."""
    async with (dialer or Dialer()).probe(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1.0
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_healthy(url: str, verify: ssl.SSLContext | bool = True) -> bool:
    try:
        return httpx.get(url, timeout=1.0, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


TLS_DIR = "tls"


def dev_tls_names(settings: Settings) -> list[str]:
    """What the dev server certificate covers: this machine by name and loopback
    address, the configured host, and the service names."""
    services = [key for key, _ in PROTOMESH_SERVICES.values()]
    return ["localhost", "127.0.0.1", "::1", reachable(settings.host), *services, "gateway"]


def with_dev_tls(settings: Settings) -> tuple[Settings, DevCertificates]:
    """`settings` with TLS on every hop, using the dev CA's certificates in
    `<data_dir>/tls` (created on first use). The services present their server
    certificate as their client certificate; `PROTOMESH_TLS_CLIENT_AUTH` is kept."""
    files = ensure_dev_certificates(settings.data_dir.resolve() / TLS_DIR, dev_tls_names(settings))
    tls = replace(settings.tls, cert=str(files.server), key=str(files.server_key), ca=str(files.ca))
    return replace(settings, tls=tls), files


def wait_healthy(settings: Settings, children: list[Child]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    dialer = Dialer.from_settings(settings)
    verify = https_verification(settings.tls)
    pending = {c.name: c.health for c in children if c.health}
    while pending:
        for child in children:
            code = child.exited()
            if code is not None:
                raise RuntimeError(
                    f"{child.name} exited with code {code}; last log lines:\n{child.log_tail()}"
                )
        for name, health in sorted(pending.items()):
            if health.startswith("http"):
                ok = http_healthy(f"{health}/healthz", verify)
            else:
                ok = asyncio.run(grpc_serving(health, dialer))
            if ok:
                del pending[name]
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
    """Brings everything up and returns once all of it is healthy. Each child runs
    with exactly `settings` (`Settings.child_environment`), so a flag such as
    `--data-dir` reaches every process and a stray variable in this shell cannot
    contradict them."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_dev_key(settings.data_dir)
    postgres = None
    database_url = settings.database_url
    if not database_url:
        postgres = EmbeddedPostgres(settings.data_dir / "pg")
        database_url = postgres.start()
    asyncio.run(migrate(database_url))
    env = {
        **settings.child_environment(),
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

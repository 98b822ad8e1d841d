"""What the bench scripts share: latency summaries and a whole protomesh on free
127.0.0.1 ports in a scratch directory."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.launcher import System, free_ports, start_system
from services.platform.config import REPLICA_METRICS_STRIDE, REPLICA_PORT_STRIDE, Settings
from services.platform.identity import KEY_FILE, load_key, mint_token

ALL_SCOPES = (
    "documents:read documents:write search:read tasks:read tasks:write cost:read cost:write"
)
SERVICE_PORT_VARIABLES = (
    "PROTOMESH_DOCUMENT_PORT",
    "PROTOMESH_SEARCH_PORT",
    "PROTOMESH_TASK_PORT",
    "PROTOMESH_COST_PORT",
)
PORT_VARIABLES = (*SERVICE_PORT_VARIABLES, "PROTOMESH_GATEWAY_PORT")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in [0, 1]) of a non-empty sample."""
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """count, p50, p95, p99 and max in milliseconds."""
    if not seconds:
        return {"count": 0}
    return {
        "count": len(seconds),
        "p50_ms": ms(percentile(seconds, 0.50)),
        "p95_ms": ms(percentile(seconds, 0.95)),
        "p99_ms": ms(percentile(seconds, 0.99)),
        "max_ms": ms(max(seconds)),
    }


@dataclass
class RunningSystem:
    """`protomesh up` as processes, with tokens for any tenant."""

    settings: Settings
    system: System

    def token(self, tenant: str, user: str = "bench") -> str:
        return mint_token(
            load_key(self.settings.data_dir / KEY_FILE),
            tenant=tenant,
            user=user,
            scopes=ALL_SCOPES,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            ttl_seconds=3600,
        )

    @property
    def gateway(self) -> str:
        return self.settings.gateway_url


METRICS_COMPONENTS = 5  # documents, search, tasks, cost, task workers (Settings.metrics_port_of)


def replica_ports(ports: Sequence[int], metrics_base: int, replicas: int) -> list[int]:
    """Every port a system with `replicas` per service binds, given its base ports:
    each service port + 100·i and each metrics port + 10·i."""
    service = [port + REPLICA_PORT_STRIDE * i for port in ports for i in range(replicas)]
    metrics = [
        metrics_base + offset + REPLICA_METRICS_STRIDE * i
        for offset in range(METRICS_COMPONENTS)
        for i in range(replicas)
    ]
    return service + metrics


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _base_ports(replicas: int, attempts: int = 50) -> list[int]:
    """Free base ports (the four services, the gateway, the metrics base) whose
    replica and metrics offsets are free as well."""
    for _ in range(attempts):
        ports = free_ports(len(PORT_VARIABLES) + 1)
        derived = replica_ports(ports[: len(SERVICE_PORT_VARIABLES)], ports[-1], replicas)
        every = [*derived, ports[len(SERVICE_PORT_VARIABLES)]]
        if len(set(every)) == len(every) and max(every) < 65536 and all(map(_bindable, derived)):
            return ports
    raise RuntimeError(f"found no free ports for {replicas} replicas per service")


@contextlib.contextmanager
def running_system(
    workers: int = 2,
    log_level: str = "warning",
    replicas: int = 1,
    environ: Mapping[str, str] | None = None,
) -> Iterator[RunningSystem]:
    """The whole system (embedded PostgreSQL, services, workers, gateway) in a
    temporary data directory, stopped and removed afterwards. `replicas` runs that
    many processes per service (and gateway workers), as `protomesh up --replicas`;
    `environ` adds PROTOMESH_* variables."""
    with tempfile.TemporaryDirectory(prefix="protomesh-bench-") as scratch:
        ports = _base_ports(replicas)
        variables = {name: str(port) for name, port in zip(PORT_VARIABLES, ports, strict=False)}
        variables["PROTOMESH_METRICS_PORT_BASE"] = str(ports[-1])
        variables["PROTOMESH_DATA_DIR"] = str(Path(scratch) / "data")
        variables["PROTOMESH_LOG_LEVEL"] = log_level
        variables["PROTOMESH_REPLICAS"] = str(replicas)
        settings = Settings.from_env({**variables, **(environ or {})})
        if settings.replicas > settings.gateway.workers:  # as `protomesh up --replicas`
            gateway = dataclasses.replace(settings.gateway, workers=settings.replicas)
            settings = dataclasses.replace(settings, gateway=gateway)
        system = start_system(settings, workers=workers)
        try:
            yield RunningSystem(settings, system)
        finally:
            system.stop()

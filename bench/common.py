"""What the bench scripts share: latency summaries and a whole protomesh on free
127.0.0.1 ports in a scratch directory."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.launcher import System, free_ports, start_system
from services.platform.config import Settings
from services.platform.identity import KEY_FILE, load_key, mint_token

ALL_SCOPES = (
    "documents:read documents:write search:read tasks:read tasks:write cost:read cost:write"
)
PORT_VARIABLES = (
    "PROTOMESH_DOCUMENT_PORT",
    "PROTOMESH_SEARCH_PORT",
    "PROTOMESH_TASK_PORT",
    "PROTOMESH_COST_PORT",
    "PROTOMESH_GATEWAY_PORT",
)


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


@contextlib.contextmanager
def running_system(workers: int = 2, log_level: str = "warning") -> Iterator[RunningSystem]:
    """The whole system (embedded PostgreSQL, services, workers, gateway) in a
    temporary data directory, stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="protomesh-bench-") as scratch:
        ports = free_ports(len(PORT_VARIABLES) + 1)
        environ = {name: str(port) for name, port in zip(PORT_VARIABLES, ports, strict=False)}
        environ["PROTOMESH_METRICS_PORT_BASE"] = str(ports[-1])
        environ["PROTOMESH_DATA_DIR"] = str(Path(scratch) / "data")
        environ["PROTOMESH_LOG_LEVEL"] = log_level
        settings = Settings.from_env(environ)
        system = start_system(settings, workers=workers)
        try:
            yield RunningSystem(settings, system)
        finally:
            system.stop()

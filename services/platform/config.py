"""Typed configuration from `PROTOMESH_*` environment variables.

Every setting has a default that works on a developer machine; the README's
configuration table lists them all. Values are parsed once, at start-up, into
an immutable `Settings` that is passed to whatever needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

PREFIX = "PROTOMESH_"


@dataclass(frozen=True)
class Settings:
    """All runtime settings. Field `x_y` is read from `PROTOMESH_X_Y`."""

    data_dir: Path = field(
        default=Path(".data"),
        metadata={"doc": "Embedded PostgreSQL data, dev keys and JWKS live here."},
    )
    database_url: str = field(
        default="",
        metadata={
            "doc": "Owner DSN of an external PostgreSQL with pgvector (migrations run as this "
            "user); empty starts the embedded server in the data dir."
        },
    )
    app_database_url: str = field(
        default="",
        metadata={
            "doc": "DSN the services use (the NOBYPASSRLS application role); derived from "
            "`DATABASE_URL` with user `protomesh_app` when empty."
        },
    )
    db_pool_min: int = field(default=2, metadata={"doc": "Minimum connections per pool."})
    db_pool_max: int = field(default=10, metadata={"doc": "Maximum connections per pool."})
    host: str = field(default="127.0.0.1", metadata={"doc": "Address every server binds."})
    document_port: int = field(default=50051, metadata={"doc": "DocumentService gRPC port."})
    search_port: int = field(default=50052, metadata={"doc": "SearchService gRPC port."})
    task_port: int = field(default=50053, metadata={"doc": "TaskService gRPC port."})
    cost_port: int = field(default=50054, metadata={"doc": "CostService gRPC port."})
    gateway_port: int = field(default=8080, metadata={"doc": "HTTP gateway port."})
    document_address: str = field(
        default="",
        metadata={
            "doc": "Where clients reach DocumentService, e.g. "
            "`dns:///documents-headless:50051`; `HOST:DOCUMENT_PORT` when empty."
        },
    )
    search_address: str = field(default="", metadata={"doc": "Same, for SearchService."})
    task_address: str = field(default="", metadata={"doc": "Same, for TaskService."})
    cost_address: str = field(default="", metadata={"doc": "Same, for CostService."})
    gateway_workers: int = field(default=1, metadata={"doc": "Gateway worker processes."})
    jwks: str = field(
        default="",
        metadata={
            "doc": "JWKS for token verification: a file path or an http(s) URL; "
            "`<data_dir>/jwks.json` (the dev key) when empty."
        },
    )
    jwt_issuer: str = field(default="protomesh-dev", metadata={"doc": "Required `iss` claim."})
    jwt_audience: str = field(default="protomesh", metadata={"doc": "Required `aud` claim."})
    jwt_leeway_seconds: int = field(
        default=30, metadata={"doc": "Clock skew tolerated on `exp`, `nbf` and `iat`."}
    )
    service_token_ttl_seconds: int = field(
        default=3600, metadata={"doc": "Lifetime of internal service-identity tokens."}
    )
    health_check_interval_seconds: float = field(
        default=2.0, metadata={"doc": "How often each service checks its database for health."}
    )
    grace_period_seconds: float = field(
        default=10.0, metadata={"doc": "How long shutdown waits for in-flight RPCs."}
    )
    max_message_bytes: int = field(
        default=20 * 1024 * 1024, metadata={"doc": "Largest gRPC message a server accepts."}
    )
    max_document_bytes: int = field(
        default=1024 * 1024, metadata={"doc": "Largest document content accepted."}
    )
    log_level: str = field(default="info", metadata={"doc": "debug, info, warning or error."})
    log_format: str = field(default="json", metadata={"doc": "`json` or `console`."})
    otel_exporter: str = field(
        default="off",
        metadata={
            "doc": "Tracing: `off` (no instrumentation is installed, zero cost), `console`, or "
            "`otlp` (to `PROTOMESH_OTLP_ENDPOINT`)."
        },
    )
    otlp_endpoint: str = field(
        default="http://127.0.0.1:4317", metadata={"doc": "OTLP/gRPC collector endpoint."}
    )
    metrics_port_base: int = field(
        default=0,
        metadata={
            "doc": "Prometheus `/metrics` ports: documents at this port, search +1, tasks +2, "
            "cost +3, task workers +4; 0 disables. `protomesh up` uses 9101."
        },
    )
    tenant_rate_limits: str = field(
        default="read=60000,write=30000,search=6000,expensive=600,stream=1200,admin=600",
        metadata={
            "doc": "Calls per minute per tenant and rate-limit class, per replica "
            "(`CLASS=N,…`; 0 = unlimited); excess calls get RESOURCE_EXHAUSTED with RetryInfo."
        },
    )
    tenant_burst_seconds: float = field(
        default=60.0, metadata={"doc": "Seconds of a tenant's rate it may spend at once."}
    )
    tenant_max_in_flight: int = field(
        default=256,
        metadata={"doc": "Calls one tenant may have in flight per replica (0 = unlimited)."},
    )
    page_token_secret: str = field(
        default="",
        metadata={
            "doc": "Key that signs page tokens; derived from the dev key when empty. Set the "
            "same value on every replica."
        },
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Builds settings from the environment, then applies keyword overrides (CLI flags)."""
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(hints[f.name], raw, f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def jwks_source(self) -> str:
        return self.jwks or str(self.data_dir / "jwks.json")

    def port_of(self, service: str) -> int:
        ports = {
            "document": self.document_port,
            "search": self.search_port,
            "task": self.task_port,
            "cost": self.cost_port,
        }
        return ports[service]

    def metrics_port_of(self, component: str) -> int:
        """The Prometheus port of a process (0 when disabled)."""
        if not self.metrics_port_base:
            return 0
        offsets = {"document": 0, "search": 1, "task": 2, "cost": 3, "task-worker": 4}
        return self.metrics_port_base + offsets[component]

    def address_of(self, service: str) -> str:
        """Target for clients of `service`: its override, else this host and its port.
        A bind-all host (0.0.0.0) is reached on the loopback address."""
        override: str = getattr(self, f"{service}_address")
        if override:
            return override
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"{host}:{self.port_of(service)}"


def _parse(kind: Any, raw: str, name: str) -> Any:
    try:
        if kind is bool:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind is Path:
            return Path(raw)
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from exc


def documented_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for the README and `--help`."""
    return [
        (PREFIX + f.name.upper(), str(f.default), f.metadata.get("doc", ""))
        for f in fields(Settings)
    ]

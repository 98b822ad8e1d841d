"""Gateway configuration: what to serve (services, their backends, descriptors
for comments) and how (limits, CORS, streaming). Built from the platform's
`Settings` plus `PROTOMESH_GATEWAY_*` variables, or directly in tests."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "PROTOMESH_GATEWAY_"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DESCRIPTOR_SET = REPO_ROOT / "generated" / "protomesh_descriptor_set.binpb"

# The protomesh services, their Settings key and the module that registers them.
PROTOMESH_SERVICES = {
    "protomesh.document.v1.DocumentService": (
        "document",
        "protomesh.document.v1.document_service_pb2",
    ),
    "protomesh.search.v1.SearchService": ("search", "protomesh.search.v1.search_service_pb2"),
    "protomesh.task.v1.TaskService": ("task", "protomesh.task.v1.task_service_pb2"),
    "protomesh.cost.v1.CostService": ("cost", "protomesh.cost.v1.cost_service_pb2"),
}


@dataclass(frozen=True)
class GatewayConfig:
    """How one gateway instance behaves. Every field has an environment variable
    `PROTOMESH_GATEWAY_<FIELD>` (lists comma-separated, backends `svc=addr,...`)."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    backends: Mapping[str, str] = field(default_factory=dict)
    proto_modules: tuple[str, ...] = ()
    descriptor_set: str = str(DEFAULT_DESCRIPTOR_SET)
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 4 * 1024 * 1024
    max_line_bytes: int = 4 * 1024 * 1024
    heartbeat_seconds: float = 15.0
    first_message_seconds: float = 0.25
    emit_unpopulated: bool = True
    health_timeout_seconds: float = 1.0
    gzip_min_bytes: int = 1024
    title: str = "protomesh"
    jwt_issuer: str = ""
    public_url: str = ""

    @property
    def base_url(self) -> str:
        """Where clients reach this gateway (`public_url`, else host and port)."""
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    def import_proto_modules(self) -> None:
        """Registers the services' descriptors in the default pool."""
        for module in self.proto_modules:
            importlib.import_module(module)

    @classmethod
    def from_settings(
        cls, settings: Any, environ: Mapping[str, str] | None = None
    ) -> GatewayConfig:
        """Production config: the four protomesh services at `settings.address_of(...)`,
        overridable by `PROTOMESH_GATEWAY_*`."""
        backends = {name: settings.address_of(key) for name, (key, _) in PROTOMESH_SERVICES.items()}
        base = cls(
            host=settings.host,
            port=settings.gateway_port,
            workers=settings.gateway_workers,
            backends=backends,
            proto_modules=tuple(module for _, module in PROTOMESH_SERVICES.values()),
            jwt_issuer=settings.jwt_issuer,
        )
        return base.with_env(os.environ if environ is None else environ)

    def with_env(self, environ: Mapping[str, str]) -> GatewayConfig:
        values: dict[str, Any] = {}
        for name, current in self.__dict__.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            values[name] = _parse(name, current, raw)
        return GatewayConfig(**{**self.__dict__, **values})


def _parse(name: str, current: Any, raw: str) -> Any:
    try:
        if isinstance(current, bool):
            return raw.lower() in {"1", "true", "yes", "on"}
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(current, Mapping):
            pairs = (part.split("=", 1) for part in raw.split(",") if part.strip())
            return {key.strip(): value.strip() for key, value in pairs}
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r}: {exc}") from None
    return raw

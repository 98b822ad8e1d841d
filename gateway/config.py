"""Gateway configuration: what to serve (services, their backends, descriptors
for comments) and how (limits, CORS, streaming). Built from the settings tree
(`Settings.gateway`, the `PROTOMESH_GATEWAY_*` variables), or directly in tests."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.credentials import CredentialCheck
from services.platform.catalog import PROTOMESH_SERVICES
from services.platform.channels import Dialer
from services.platform.config import GatewaySettings, Settings
from services.platform.tls import TlsError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DESCRIPTOR_SET = REPO_ROOT / "generated" / "protomesh_descriptor_set.binpb"

_DEFAULTS = GatewaySettings()  # one set of defaults: the settings tree's


@dataclass(frozen=True)
class GatewayConfig:
    """How one gateway instance behaves (resolved: no field is left "use the default")."""

    host: str = "127.0.0.1"
    port: int = _DEFAULTS.port
    workers: int = _DEFAULTS.workers
    backends: Mapping[str, str] = field(default_factory=dict)
    proto_modules: tuple[str, ...] = ()
    descriptor_set: str = str(DEFAULT_DESCRIPTOR_SET)
    cors_origins: tuple[str, ...] = _DEFAULTS.cors_origins
    max_body_bytes: int = _DEFAULTS.max_body_bytes
    max_line_bytes: int = _DEFAULTS.max_line_bytes
    heartbeat_seconds: float = _DEFAULTS.heartbeat_seconds
    first_message_seconds: float = _DEFAULTS.first_message_seconds
    emit_unpopulated: bool = _DEFAULTS.emit_unpopulated
    health_timeout_seconds: float = _DEFAULTS.health_timeout_seconds
    gzip_min_bytes: int = _DEFAULTS.gzip_min_bytes
    title: str = _DEFAULTS.title
    jwt_issuer: str = ""
    public_url: str = ""
    dialer: Dialer = field(default_factory=Dialer)
    # HTTPS (gateway/tls.py): the certificate and key files uvicorn serves, and
    # whether a token over plain HTTP is refused (always, when serving HTTPS).
    tls_certfile: str = ""
    tls_keyfile: str = ""
    require_tls: bool = _DEFAULTS.require_tls
    forwarded_allow_ips: tuple[str, ...] = _DEFAULTS.forwarded_allow_ips
    # Whether a request the gateway refuses itself is 401 first when its credentials
    # would be refused (gateway/credentials.py); None: the refusal as it is.
    credentials: CredentialCheck | None = None

    @property
    def https(self) -> bool:
        return bool(self.tls_certfile)

    @property
    def tokens_need_tls(self) -> bool:
        return self.https or self.require_tls

    @property
    def base_url(self) -> str:
        """Where clients reach this gateway (`public_url`, else host and port)."""
        scheme = "https" if self.https else "http"
        return self.public_url.rstrip("/") or f"{scheme}://{self.host}:{self.port}"

    def uvicorn_options(self) -> dict[str, Any]:
        """How uvicorn serves this gateway: address, HTTPS, and which proxies'
        `X-Forwarded-*` headers it believes (none unless configured)."""
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "proxy_headers": bool(self.forwarded_allow_ips),
            "forwarded_allow_ips": list(self.forwarded_allow_ips) or None,
        }
        if self.https:
            options.update(ssl_certfile=self.tls_certfile, ssl_keyfile=self.tls_keyfile)
        return options

    def import_proto_modules(self) -> None:
        """Registers the services' descriptors in the default pool."""
        for module in self.proto_modules:
            importlib.import_module(module)

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        """Production config from the settings tree (`settings.gateway`): the four
        protomesh services at `settings.address_of(...)` unless `backends` names others."""
        gateway = settings.gateway
        dialer = Dialer.from_settings(settings)  # checks the TLS settings
        if settings.tls.enabled and not settings.tls.cert:
            raise TlsError(
                "TLS is on but the gateway has no certificate to serve HTTPS with: set "
                "PROTOMESH_TLS_CERT and PROTOMESH_TLS_KEY"
            )
        backends = gateway.backends or {
            name: settings.address_of(key) for name, (key, _) in PROTOMESH_SERVICES.items()
        }
        modules = gateway.proto_modules or tuple(
            module for _, module in PROTOMESH_SERVICES.values()
        )
        return cls(
            host=gateway.host or settings.host,
            port=gateway.port,
            workers=gateway.workers,
            backends=backends,
            proto_modules=modules,
            descriptor_set=gateway.descriptor_set or str(DEFAULT_DESCRIPTOR_SET),
            cors_origins=gateway.cors_origins,
            max_body_bytes=gateway.max_body_bytes,
            max_line_bytes=gateway.max_line_bytes,
            heartbeat_seconds=gateway.heartbeat_seconds,
            first_message_seconds=gateway.first_message_seconds,
            emit_unpopulated=gateway.emit_unpopulated,
            health_timeout_seconds=gateway.health_timeout_seconds,
            gzip_min_bytes=gateway.gzip_min_bytes,
            title=gateway.title,
            jwt_issuer=settings.jwt_issuer,
            public_url=gateway.public_url,
            dialer=dialer,
            tls_certfile=settings.tls.cert,
            tls_keyfile=settings.tls.key,
            require_tls=gateway.require_tls,
            forwarded_allow_ips=gateway.forwarded_allow_ips,
            credentials=CredentialCheck.from_settings(settings),
        )

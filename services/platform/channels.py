"""The one way protomesh opens a gRPC channel: the gateway, the services' clients,
the task workers and the CLI all dial through a `Dialer`.

Every channel gets
- `round_robin` over every address its target resolves to (`dns:///svc-headless:50051`
  in Kubernetes, `ipv4:127.0.0.1:50051,127.0.0.1:50151` for `protomesh up --replicas 2`),
  so calls, not connections, are spread over the replicas;
- client-side health checking (`grpc.health.v1.Health/Watch`): a replica that turns
  NOT_SERVING — draining on SIGTERM, or its database gone — gets no new calls;
- the retry policy each RPC's contract allows (`idempotency_level`): IDEMPOTENT and
  NO_SIDE_EFFECTS methods are retried on UNAVAILABLE, at most 4 attempts, with gRPC's
  jittered exponential backoff; nothing else is ever retried by the channel;
- the configured message size limits;
- TLS when the settings turn it on (`PROTOMESH_TLS_*`, services/platform/tls.py):
  servers are verified against the CA, this process's certificate is presented
  for mTLS, and nothing is ever dialled in plaintext.

Servers close each connection after `max_connection_age_seconds` (with GOAWAY, letting
calls in flight finish), so clients re-resolve and replicas added meanwhile get traffic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from services.platform.catalog import descriptor
from services.platform.config import Settings
from services.platform.policy import retryable
from services.platform.tls import TlsMaterials, load

RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def service_config(services: Iterable[ServiceDescriptor]) -> str:
    """gRPC service config JSON: round_robin, health checking of the one service the
    target serves (of the whole server when it serves several), and a retry policy
    for the retryable methods only."""
    services = list(services)
    names = [
        {"service": service.full_name, "method": method.name}
        for service in services
        for method in service.methods
        if retryable(method)
    ]
    config: dict[str, Any] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": services[0].full_name if len(services) == 1 else ""},
        "methodConfig": [],
    }
    if names:
        config["methodConfig"].append({"name": names, "retryPolicy": RETRY_POLICY})
    return json.dumps(config)


@dataclass(frozen=True)
class Dialer:
    """How this process dials other protomesh servers (one per process, from its
    settings; the gateway, `ServiceClients` and the CLI all hold one). `tls` is
    None for plaintext."""

    max_message_bytes: int = Settings.max_message_bytes
    tls: TlsMaterials | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Dialer:
        """Raises `TlsError` when the TLS settings cannot work (before any dial)."""
        return cls(max_message_bytes=settings.max_message_bytes, tls=load(settings.tls))

    def options(self, services: Iterable[ServiceDescriptor]) -> list[tuple[str, Any]]:
        return [
            ("grpc.service_config", service_config(services)),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
        ]

    def probe(self, address: str) -> grpc.aio.Channel:
        """A channel to one server, for asking its health (no balancing, no health
        checking: a NOT_SERVING server must still answer)."""
        options = [("grpc.max_receive_message_length", self.max_message_bytes)]
        return self._channel(address, options)

    def open(self, target: str, services: Iterable[ServiceDescriptor] = ()) -> grpc.aio.Channel:
        """A channel to `target` serving `services` (their descriptors shape the
        retry policy and which health status is watched)."""
        return self._channel(target, self.options(services))

    def _channel(self, target: str, options: list[tuple[str, Any]]) -> grpc.aio.Channel:
        if self.tls is None:
            return grpc.aio.insecure_channel(target, options=options)
        name = self.tls.target_name(target)
        if name:
            options = [*options, ("grpc.ssl_target_name_override", name)]
        return grpc.aio.secure_channel(target, self.tls.channel_credentials(), options=options)


@dataclass(frozen=True)
class Endpoint:
    """One service's target and how to dial it (what the CLI's commands take)."""

    target: str
    dialer: Dialer = Dialer()
    services: tuple[ServiceDescriptor, ...] = ()

    def open(self) -> grpc.aio.Channel:
        return self.dialer.open(self.target, self.services)


def endpoint(settings: Settings, service: str) -> Endpoint:
    """Where `service` ("document", "search", "task", "cost") is, per `settings`."""
    return Endpoint(
        settings.address_of(service), Dialer.from_settings(settings), (descriptor(service),)
    )


def server_options(settings: Settings) -> list[tuple[str, Any]]:
    """The options every protomesh gRPC server runs with."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # One process per port: a second replica binds its own (see `replica`).
        ("grpc.so_reuseport", 0),
    ]
    if settings.max_connection_age_seconds > 0:
        # GOAWAY after this long (±10% jitter from gRPC); calls in flight, watches
        # included, finish on the old connection, new ones re-resolve the target.
        options.append(
            ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000))
        )
    return options

"""Service-to-service clients: generated stubs over shared channels that carry
the caller's credentials, request id, trace context and remaining deadline.

Retries come from gRPC's service config, derived from each method's
`idempotency_level`: only IDEMPOTENT and NO_SIDE_EFFECTS methods are retried,
only on UNAVAILABLE, at most 4 attempts with exponential backoff (gRPC adds
jitter to every backoff).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from services.platform.config import Settings
from services.platform.context import maybe_current_call
from services.platform.deadlines import downstream_timeout
from services.platform.identity import ServiceIdentity
from services.platform.interceptors import REQUEST_ID_HEADER
from services.platform.policy import method_info
from services.platform.telemetry import current_traceparent

StubT = TypeVar("StubT")

RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def service_config(service: ServiceDescriptor) -> str:
    """gRPC service config JSON with a retry policy for the retryable methods only."""
    retryable = [
        {"service": service.full_name, "method": m.name}
        for m in service.methods
        if method_info(m).retryable
    ]
    config: dict[str, Any] = {"methodConfig": []}
    if retryable:
        config["methodConfig"].append({"name": retryable, "retryPolicy": RETRY_POLICY})
    return json.dumps(config)


def call_metadata(identity: ServiceIdentity | None = None) -> tuple[tuple[str, str], ...]:
    """Credentials and tracing for a downstream call: the current caller's token when
    handling an RPC on their behalf, else the service's own identity."""
    call = maybe_current_call()
    token = call.token if call and call.token else (identity.token() if identity else "")
    metadata: list[tuple[str, str]] = []
    if token:
        metadata.append(("authorization", f"Bearer {token}"))
    if call is not None:
        metadata.append((REQUEST_ID_HEADER, call.request_id))
        # With tracing on, the OpenTelemetry client interceptor injects the current
        # span's traceparent itself; with it off, pass the caller's through unchanged.
        if call.traceparent and not current_traceparent():
            metadata.append(("traceparent", call.traceparent))
    return tuple(metadata)


class ServiceClients:
    """Channels to the other services, one per target, created lazily and shared."""

    def __init__(self, settings: Settings, identity: ServiceIdentity | None = None) -> None:
        self.settings = settings
        self.identity = identity
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, service: str, descriptor: ServiceDescriptor) -> grpc.aio.Channel:
        found = self._channels.get(service)
        if found is None:
            found = grpc.aio.insecure_channel(
                self.settings.address_of(service),
                options=[
                    # Spread calls over every address a dns:/// target resolves to.
                    ("grpc.lb_policy_name", "round_robin"),
                    ("grpc.service_config", service_config(descriptor)),
                    ("grpc.enable_retries", 1),
                    ("grpc.max_receive_message_length", self.settings.max_message_bytes),
                    ("grpc.max_send_message_length", self.settings.max_message_bytes),
                ],
            )
            self._channels[service] = found
        return found

    def stub(
        self, service: str, descriptor: ServiceDescriptor, stub_class: Callable[[Any], StubT]
    ) -> StubT:
        return stub_class(self.channel(service, descriptor))

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return call_metadata(self.identity)

    def timeout(self, cap: float | None = None) -> float | None:
        return downstream_timeout(cap)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

"""Service-to-service clients: generated stubs over shared channels that carry
the caller's credentials, request id, trace context and remaining deadline.

Channels come from `services.platform.channels` (round_robin over the replicas,
health checking, the contract's retry policy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from services.platform.channels import Dialer
from services.platform.config import Settings
from services.platform.context import maybe_current_call
from services.platform.deadlines import downstream_timeout
from services.platform.identity import ServiceIdentity
from services.platform.interceptors import REQUEST_ID_HEADER
from services.platform.telemetry import current_traceparent

StubT = TypeVar("StubT")


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
        self.dialer = Dialer.from_settings(settings)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, service: str, descriptor: ServiceDescriptor) -> grpc.aio.Channel:
        found = self._channels.get(service)
        if found is None:
            found = self.dialer.open(self.settings.address_of(service), [descriptor])
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

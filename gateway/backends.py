"""gRPC channels to the backends: one shared `grpc.aio` channel per address,
created lazily in the serving event loop by the platform's `Dialer` (round_robin
over every address the target resolves to, health checking, the contract's
retries), and generic (descriptor-driven) multicallables for the four streaming
kinds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2

from gateway.routing import MethodInfo
from services.platform.channels import Dialer

_HEALTH_CHECK = "/grpc.health.v1.Health/Check"


class Backends:
    """Service full name → address, with the channels and stubs to call them."""

    def __init__(self, addresses: Mapping[str, str], dialer: Dialer | None = None) -> None:
        self.addresses = dict(addresses)
        self.dialer = dialer or Dialer()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, Any] = {}

    def address_of(self, service: str) -> str:
        try:
            return self.addresses[service]
        except KeyError:
            raise LookupError(f"no backend address for {service}") from None

    def channel(self, service: str) -> grpc.aio.Channel:
        address = self.address_of(service)
        channel = self._channels.get(address)
        if channel is None:
            served = sorted(name for name, at in self.addresses.items() if at == address)
            channel = self.dialer.open(address, [_descriptor(name) for name in served])
            self._channels[address] = channel
        return channel

    def stub(self, method: MethodInfo) -> Any:
        """The multicallable for a method (unary_unary, unary_stream, ...)."""
        stub = self._stubs.get(method.grpc_path)
        if stub is not None:
            return stub
        channel = self.channel(method.service)
        kind = (
            ("stream" if method.client_streaming else "unary")
            + "_"
            + ("stream" if method.server_streaming else "unary")
        )
        factory = getattr(channel, kind)
        stub = factory(
            method.grpc_path,
            request_serializer=_serialize,
            response_deserializer=method.response_class.FromString,
        )
        self._stubs[method.grpc_path] = stub
        return stub

    async def check(self, service: str, wait_seconds: float) -> str:
        """The backend's health status name for `service` (or the failure's code)."""
        check = self.channel(service).unary_unary(
            _HEALTH_CHECK,
            request_serializer=_serialize,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            response = await check(
                health_pb2.HealthCheckRequest(service=service), timeout=wait_seconds
            )
        except grpc.aio.AioRpcError as exc:
            return str(exc.code().name)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    async def close(self) -> None:
        channels = list(self._channels.values())
        self._channels.clear()
        self._stubs.clear()
        for channel in channels:
            await channel.close()


def _descriptor(service: str) -> ServiceDescriptor:
    """A served service's descriptor (routes exist only for registered services)."""
    return descriptor_pool.Default().FindServiceByName(service)


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data

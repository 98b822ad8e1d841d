"""Per-RPC policy read from the contracts' method options.

`protomesh.common.v1.policy` declares scopes, default deadline and rate-limit
class on every RPC; this module turns a service descriptor into a lookup table
keyed by the gRPC method path (`/protomesh.document.v1.DocumentService/GetDocument`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from protomesh.common.v1 import options_pb2

IdempotencyLevel = descriptor_pb2.MethodOptions.IdempotencyLevel


@dataclass(frozen=True)
class MethodInfo:
    """Everything the interceptors need to know about one RPC."""

    path: str
    service: str
    name: str
    scopes: frozenset[str]
    default_deadline: float | None
    rate_limit_class: int
    idempotency_level: int
    request_class: type[Message]
    client_streaming: bool
    server_streaming: bool

    @property
    def retryable(self) -> bool:
        """Safe to retry automatically: declared idempotent or free of side effects."""
        return self.idempotency_level in RETRYABLE_LEVELS


# Idempotency levels (google/protobuf/descriptor.proto) a client may retry on its own.
RETRYABLE_LEVELS = frozenset(
    {descriptor_pb2.MethodOptions.IDEMPOTENT, descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS}
)


def retryable(method: MethodDescriptor) -> bool:
    """Any service's method, protomesh's or not: safe to retry automatically."""
    level = method.GetOptions().idempotency_level  # type: ignore[attr-defined]
    return level in RETRYABLE_LEVELS


def method_policy(method: MethodDescriptor) -> options_pb2.MethodPolicy:
    options: Any = method.GetOptions()
    if not options.HasExtension(options_pb2.policy):
        raise ValueError(f"{method.full_name} declares no (protomesh.common.v1.policy) option")
    policy: options_pb2.MethodPolicy = options.Extensions[options_pb2.policy]
    return policy


def method_info(method: MethodDescriptor) -> MethodInfo:
    policy = method_policy(method)
    deadline = policy.default_deadline.ToTimedelta().total_seconds()
    return MethodInfo(
        path=f"/{method.containing_service.full_name}/{method.name}",
        service=method.containing_service.full_name,
        name=method.name,
        scopes=frozenset(policy.scopes),
        default_deadline=deadline or None,
        rate_limit_class=policy.rate_limit_class,
        idempotency_level=method.GetOptions().idempotency_level,
        request_class=GetMessageClass(method.input_type),
        client_streaming=method.client_streaming,
        server_streaming=method.server_streaming,
    )


def service_methods(*services: ServiceDescriptor) -> dict[str, MethodInfo]:
    """Method path → policy for every RPC of the given services."""
    table: dict[str, MethodInfo] = {}
    for service in services:
        for method in service.methods:
            info = method_info(method)
            table[info.path] = info
    return table

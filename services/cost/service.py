"""How to serve CostService: its descriptor, servicer registration and factory."""

from __future__ import annotations

from protomesh.cost.v1 import cost_service_pb2, cost_service_pb2_grpc
from services.platform.server import Runtime, ServiceParts, ServiceSpec


async def build(runtime: Runtime) -> ServiceParts:
    # Every RPC answers UNIMPLEMENTED until the service lands; auth, validation,
    # health and reflection already work through the platform.
    return ServiceParts(servicer=cost_service_pb2_grpc.CostServiceServicer())  # type: ignore[abstract]


SPEC = ServiceSpec(
    name="cost",
    descriptor=cost_service_pb2.DESCRIPTOR.services_by_name["CostService"],
    add_to_server=cost_service_pb2_grpc.add_CostServiceServicer_to_server,
    build=build,
)

"""How to serve SearchService: its descriptor, servicer registration and factory."""

from __future__ import annotations

from protomesh.search.v1 import search_service_pb2, search_service_pb2_grpc
from services.platform.server import Runtime, ServiceParts, ServiceSpec


async def build(runtime: Runtime) -> ServiceParts:
    # Every RPC answers UNIMPLEMENTED until the service lands; auth, validation,
    # health and reflection already work through the platform.
    return ServiceParts(servicer=search_service_pb2_grpc.SearchServiceServicer())  # type: ignore[abstract]


SPEC = ServiceSpec(
    name="search",
    descriptor=search_service_pb2.DESCRIPTOR.services_by_name["SearchService"],
    add_to_server=search_service_pb2_grpc.add_SearchServiceServicer_to_server,
    build=build,
)

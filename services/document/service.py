"""How to serve DocumentService: its descriptor, servicer registration and factory."""

from __future__ import annotations

from protomesh.document.v1 import document_service_pb2, document_service_pb2_grpc
from services.platform.server import Runtime, ServiceParts, ServiceSpec


async def build(runtime: Runtime) -> ServiceParts:
    # Every RPC answers UNIMPLEMENTED until the service lands; auth, validation,
    # health and reflection already work through the platform.
    return ServiceParts(servicer=document_service_pb2_grpc.DocumentServiceServicer())  # type: ignore[abstract]


SPEC = ServiceSpec(
    name="document",
    descriptor=document_service_pb2.DESCRIPTOR.services_by_name["DocumentService"],
    add_to_server=document_service_pb2_grpc.add_DocumentServiceServicer_to_server,
    build=build,
)

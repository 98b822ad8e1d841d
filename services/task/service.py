"""How to serve TaskService: its descriptor, servicer registration and factory."""

from __future__ import annotations

from protomesh.task.v1 import task_service_pb2, task_service_pb2_grpc
from services.platform.server import Runtime, ServiceParts, ServiceSpec


async def build(runtime: Runtime) -> ServiceParts:
    # Every RPC answers UNIMPLEMENTED until the service lands; auth, validation,
    # health and reflection already work through the platform.
    return ServiceParts(servicer=task_service_pb2_grpc.TaskServiceServicer())  # type: ignore[abstract]


SPEC = ServiceSpec(
    name="task",
    descriptor=task_service_pb2.DESCRIPTOR.services_by_name["TaskService"],
    add_to_server=task_service_pb2_grpc.add_TaskServiceServicer_to_server,
    build=build,
)

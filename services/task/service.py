"""How to serve TaskService: its descriptor, servicer registration and factory.

The server accepts, reports and steers tasks and streams their events (one
LISTEN connection per process wakes every WatchTask stream). Workers run in
their own processes: `python -m services.task.worker --count N`.
"""

from __future__ import annotations

from protomesh.task.v1 import task_service_pb2, task_service_pb2_grpc
from services.platform import heartbeats
from services.platform.pagination import PageTokens, page_token_secret
from services.platform.server import Runtime, ServiceParts, ServiceSpec, direct_dsn
from services.task.hub import event_hub
from services.task.servicer import TaskServicer
from services.task.store import TaskStore
from services.task.workflows import Registry, default_registry


def make_spec(
    registry: Registry | None = None,
    heartbeat_seconds: float = heartbeats.DEFAULT_HEARTBEAT_SECONDS,
) -> ServiceSpec:
    """TaskService, accepting the task types of `registry` (the built-in workflows
    by default), built like every other service's spec; a quiet WatchTask sends a
    heartbeat every `heartbeat_seconds` (tests shorten it)."""

    async def build(runtime: Runtime) -> ServiceParts:
        hub = event_hub(direct_dsn(runtime.settings))
        servicer = TaskServicer(
            TaskStore(runtime.pool),
            registry or default_registry(),
            hub,
            PageTokens(page_token_secret(runtime.settings)),
            heartbeat_seconds,
        )
        return ServiceParts(servicer=servicer, background=[hub.run])

    return ServiceSpec(
        name="task",
        descriptor=task_service_pb2.DESCRIPTOR.services_by_name["TaskService"],
        add_to_server=task_service_pb2_grpc.add_TaskServiceServicer_to_server,
        build=build,
    )


SPEC = make_spec()

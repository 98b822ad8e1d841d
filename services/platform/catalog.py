"""The four protomesh services: the key settings use for each (`document_port`,
`address_of("document")`), its full gRPC name and the generated module that
registers its descriptor. Modules are imported only when a descriptor is asked for."""

from __future__ import annotations

import importlib

from google.protobuf.descriptor import ServiceDescriptor

# Full service name → (settings key, generated module).
PROTOMESH_SERVICES = {
    "protomesh.document.v1.DocumentService": (
        "document",
        "protomesh.document.v1.document_service_pb2",
    ),
    "protomesh.search.v1.SearchService": ("search", "protomesh.search.v1.search_service_pb2"),
    "protomesh.task.v1.TaskService": ("task", "protomesh.task.v1.task_service_pb2"),
    "protomesh.cost.v1.CostService": ("cost", "protomesh.cost.v1.cost_service_pb2"),
}
FULL_NAMES = {key: name for name, (key, _) in PROTOMESH_SERVICES.items()}


def descriptor(key: str) -> ServiceDescriptor:
    """The descriptor of the service settings call `key` ("document", "search", …)."""
    full_name = FULL_NAMES[key]
    module = importlib.import_module(PROTOMESH_SERVICES[full_name][1])
    found: ServiceDescriptor = module.DESCRIPTOR.services_by_name[full_name.rsplit(".", 1)[1]]
    return found

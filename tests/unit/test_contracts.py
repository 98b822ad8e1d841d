"""Every RPC of every protomesh service declares what the platform and gateway
rely on: an HTTP binding, a policy (scopes, deadline, rate-limit class), an
explicit idempotency level, and documentation."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor

from protomesh.common.v1 import options_pb2
from protomesh.cost.v1 import cost_service_pb2
from protomesh.document.v1 import document_service_pb2
from protomesh.search.v1 import search_service_pb2
from protomesh.task.v1 import task_service_pb2

SERVICES = [
    document_service_pb2.DESCRIPTOR.services_by_name["DocumentService"],
    search_service_pb2.DESCRIPTOR.services_by_name["SearchService"],
    task_service_pb2.DESCRIPTOR.services_by_name["TaskService"],
    cost_service_pb2.DESCRIPTOR.services_by_name["CostService"],
]
METHODS = [m for s in SERVICES for m in s.methods]
DESCRIPTOR_SET = (
    Path(__file__).resolve().parents[2] / "generated" / "protomesh_descriptor_set.binpb"
)


def _ids(method: MethodDescriptor) -> str:
    return method.full_name


@pytest.mark.parametrize("method", METHODS, ids=_ids)
def test_every_rpc_has_an_http_binding(method: MethodDescriptor) -> None:
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    assert rule.WhichOneof("pattern") is not None
    path = getattr(rule, rule.WhichOneof("pattern"))
    assert path.startswith("/v1/")


@pytest.mark.parametrize("method", METHODS, ids=_ids)
def test_every_rpc_declares_scopes_deadline_and_rate_class(method: MethodDescriptor) -> None:
    options = method.GetOptions()
    assert options.HasExtension(options_pb2.policy)
    policy = options.Extensions[options_pb2.policy]
    assert policy.scopes, "every RPC requires at least one scope"
    assert policy.rate_limit_class != options_pb2.RATE_LIMIT_CLASS_UNSPECIFIED
    long_lived = method.server_streaming and policy.HasField("stream_cursor")
    assert long_lived or policy.default_deadline.ToTimedelta().total_seconds() > 0


@pytest.mark.parametrize("method", METHODS, ids=_ids)
def test_every_rpc_declares_its_idempotency_level(method: MethodDescriptor) -> None:
    assert method.GetOptions().HasField("idempotency_level")


def _documented() -> set[str]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    documented: set[str] = set()
    for file in files.file:
        if not file.package.startswith("protomesh."):
            continue
        for location in file.source_code_info.location:
            path = tuple(location.path)
            if (
                location.leading_comments.strip()
                and len(path) == 4
                and path[0] == 6
                and path[2] == 2
            ):
                service = file.service[path[1]]
                documented.add(f"{file.package}.{service.name}.{service.method[path[3]].name}")
            if location.leading_comments.strip() and len(path) == 2 and path[0] == 6:
                documented.add(f"{file.package}.{file.service[path[1]].name}")
    return documented


@pytest.mark.parametrize("method", METHODS, ids=_ids)
def test_every_rpc_and_service_is_documented(method: MethodDescriptor) -> None:
    documented = _documented()
    assert method.full_name in documented
    assert method.containing_service.full_name in documented


def test_every_protomesh_message_and_field_is_documented() -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    missing = []
    for file in files.file:
        if not file.package.startswith("protomesh."):
            continue
        commented = {
            tuple(loc.path)
            for loc in file.source_code_info.location
            if loc.leading_comments.strip()
        }
        for mi, message in enumerate(file.message_type):
            if (4, mi) not in commented:
                missing.append(f"{file.package}.{message.name}")
            for fi, field in enumerate(message.field):
                if (4, mi, 2, fi) not in commented:
                    missing.append(f"{file.package}.{message.name}.{field.name}")
    assert missing == []

"""JSON Schema from descriptors and the OpenAPI 3.1 document: valid for the test
protos and for the real protomesh contracts; schemas match real JSON output."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from gateway.comments import Comments
from gateway.config import DEFAULT_DESCRIPTOR_SET, GatewayConfig
from gateway.jsonmap import to_json
from gateway.openapi import build_openapi
from gateway.routing import build_routes
from gateway.schema import message_json_schema
from services.platform.catalog import PROTOMESH_SERVICES
from tests.integration.gateway.harness import SERVICE, Compiled


@pytest.fixture(scope="module")
def spec(compiled: Compiled) -> dict[str, Any]:
    return build_openapi(build_routes([SERVICE]), Comments.from_path(compiled.descriptor_set))


def test_openapi_for_test_protos_validates(spec: dict[str, Any]) -> None:
    validate(spec)


def test_openapi_for_protomesh_contracts_validates() -> None:
    GatewayConfig(
        proto_modules=tuple(m for _, m in PROTOMESH_SERVICES.values())
    ).import_proto_modules()
    document = build_openapi(
        build_routes(PROTOMESH_SERVICES), Comments.from_path(DEFAULT_DESCRIPTOR_SET)
    )
    validate(document)
    assert "/v1/documents/{name}" in document["paths"]
    assert "/v1/tasks/{name}:cancel" in document["paths"]
    create = document["paths"]["/v1/documents"]["post"]
    assert "201" in create["responses"]
    assert create["description"].startswith("Creates a document.")


def test_paths_parameters_and_media_types(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    # PATCH /v1/{thing.name=things/*} is the same URL shape: one path, params by position.
    assert set(paths["/v1/things/{name}"]) == {"get", "delete", "patch"}
    patch_params = [p for p in paths["/v1/things/{name}"]["patch"]["parameters"] if "in" in p]
    assert [p["name"] for p in patch_params if p["in"] == "path"] == ["name"]
    assert "thing.name" in patch_params[0]["description"]
    shapes = [re.sub(r"\{[^}]*\}", "{}", path) for path in paths]
    assert len(shapes) == len(set(shapes)), "OpenAPI forbids paths that differ only in names"
    assert "/v1/shelves/{name}/things/{name_2}" in paths
    assert "/v1/echo/{id}/deep/{rest}" in paths
    assert "/v1/things/{name}:archive" in paths
    watch = paths["/v1/things:watch"]["get"]
    content = watch["responses"]["200"]["content"]
    assert set(content) == {"text/event-stream", "application/x-ndjson"}
    assert any(p.get("name") == "Last-Event-ID" for p in watch["parameters"])
    upload = paths["/v1/things:upload"]["post"]["requestBody"]["content"]
    assert set(upload) == {"application/x-ndjson"}
    assert "*/*" in paths["/v1/files/{path}"]["get"]["responses"]["200"]["content"]
    listing = {p["name"] for p in paths["/v1/things"]["get"]["parameters"] if "name" in p}
    assert {"pageSize", "filter.kind", "filter.inner.tag", "createdAfter", "labels"} <= listing
    assert paths["/v1/things"]["post"]["responses"].keys() == {"201", "default"}
    assert spec["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"


def test_field_behavior_maps_to_required_and_read_only(spec: dict[str, Any]) -> None:
    thing = spec["components"]["schemas"]["gatewaytest.v1.Thing"]
    assert thing["required"] == ["title"]
    assert thing["properties"]["createTime"]["readOnly"] is True
    assert thing["properties"]["weight"]["type"] == "string"
    assert thing["description"] == "A thing."
    kind = spec["components"]["schemas"]["gatewaytest.v1.Kind"]
    assert kind["enum"] == ["KIND_UNSPECIFIED", "KIND_SMALL", "KIND_LARGE"]


def test_standalone_schema_validates_real_json_output(compiled: Compiled) -> None:
    pb = compiled.pb2
    schema = message_json_schema(
        pb.EchoResponse.DESCRIPTOR, Comments.from_path(compiled.descriptor_set)
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    request = pb.EchoRequest(
        id="x",
        i64=-(2**62),
        u64=2**63,
        dbl=1.5,
        data=b"\x00",
        kind=pb.KIND_SMALL,
        kinds=[pb.KIND_LARGE],
        words=["a"],
        choice_text="t",
        maybe_count=0,
    )
    request.counts["a"] = 5
    request.by_number[3] = "three"
    request.nested.child.label = "deep"
    request.items.add(label="i")
    request.at.GetCurrentTime()
    request.wait.FromSeconds(3)
    request.mask.paths.extend(["a.b", "c"])
    request.doc.update({"k": [1, "x", None, {"n": True}]})
    request.any_value.string_value = "s"
    request.maybe_text.value = "m"
    message = pb.EchoResponse(request=request, metadata={"k": "v"}, deadline_seconds=1.0)
    for emit in (True, False):
        jsonschema.validate(to_json(message, emit), schema, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_two_members_of_a_oneof(compiled: Compiled) -> None:
    schema = message_json_schema(compiled.pb2.EchoRequest.DESCRIPTOR)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"choiceText": "a", "choiceNumber": "1"}, schema)


@pytest.fixture(scope="module")
def protomesh_spec() -> dict[str, Any]:
    GatewayConfig(
        proto_modules=tuple(m for _, m in PROTOMESH_SERVICES.values())
    ).import_proto_modules()
    return build_openapi(
        build_routes(PROTOMESH_SERVICES), Comments.from_path(DEFAULT_DESCRIPTOR_SET)
    )


def _body_schema(spec: dict[str, Any], path: str, verb: str = "post") -> dict[str, Any]:
    body = spec["paths"][path][verb]["requestBody"]["content"]["application/json"]["schema"]
    name = body["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return schema


def test_a_body_star_schema_leaves_out_the_fields_the_path_binds(
    spec: dict[str, Any], protomesh_spec: dict[str, Any]
) -> None:
    archive = _body_schema(spec, "/v1/things/{name}:archive")
    assert set(archive["properties"]) == {"reason"}
    for path in (
        "/v1/tasks/{name}:cancel",
        "/v1/tasks/{name}:retry",
        "/v1/tasks/{name}:sendInput",
        "/v1/reservations/{name}:commit",
        "/v1/reservations/{name}:release",
    ):
        schema = _body_schema(protomesh_spec, path)
        assert "name" not in schema["properties"], path
        assert "name" not in schema.get("required", []), path
    commit = _body_schema(protomesh_spec, "/v1/reservations/{name}:commit")
    assert commit["required"] == ["usage"]
    assert protomesh_spec["paths"]["/v1/reservations/{name}:commit"]["post"]["requestBody"][
        "required"
    ]
    # Without path fields the request message itself is the body.
    search = protomesh_spec["paths"]["/v1/search"]["post"]["requestBody"]["content"]
    assert search["application/json"]["schema"]["$ref"].endswith("SearchRequest")


def test_name_path_parameters_say_they_take_the_id_or_the_whole_name(
    protomesh_spec: dict[str, Any],
) -> None:
    for path in ("/v1/documents/{name}", "/v1/tasks/{name}:cancel", "/v1/budgets/{name}"):
        for verb, operation in protomesh_spec["paths"][path].items():
            (parameter,) = [p for p in operation["parameters"] if p.get("in") == "path"]
            assert "whole name" in parameter["description"], (path, verb)
            assert "%2F{id}" in parameter["description"], (path, verb)
    tier = protomesh_spec["paths"]["/v1/tenants/{name}/tier"]["get"]["parameters"][0]
    assert "`tenants%2F{id}%2Ftier`" in tier["description"]


def test_protovalidate_rules_are_in_the_schemas(protomesh_spec: dict[str, Any]) -> None:
    schemas = protomesh_spec["components"]["schemas"]
    listing = protomesh_spec["paths"]["/v1/documents"]["get"]["parameters"]
    page_size = next(p for p in listing if p.get("name") == "pageSize")["schema"]
    assert (page_size["minimum"], page_size["maximum"]) == (0, 1000)
    search = schemas["protomesh.search.v1.SearchRequest"]["properties"]
    assert (search["pageSize"]["minimum"], search["pageSize"]["maximum"]) == (1, 50)
    assert (search["query"]["minLength"], search["query"]["maxLength"]) == (1, 1024)
    assert search["bm25Weight"]["maximum"] == 1
    task = schemas["protomesh.task.v1.Task"]["properties"]
    assert task["type"]["pattern"] == "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$"
    assert (task["priority"]["minimum"], task["priority"]["maximum"]) == (0, 9)
    assert task["costLimitMicros"]["pattern"] == "^[0-9]+$"
    labels = schemas["protomesh.document.v1.Document"]["properties"]["labels"]
    assert labels["maxProperties"] == 64
    assert labels["propertyNames"]["pattern"] == "^[a-z][a-z0-9_-]{0,62}$"
    assert labels["additionalProperties"]["maxLength"] == 256
    thresholds = schemas["protomesh.cost.v1.Budget"]["properties"]["alertThresholdsPercent"]
    assert thresholds["uniqueItems"]
    assert thresholds["maxItems"] == 10
    assert thresholds["items"]["exclusiveMinimum"] == 0
    assert schemas["protomesh.cost.v1.TenantTier"]["properties"]["tier"]["enum"] == [
        "free",
        "pro",
        "enterprise",
    ]
    # (buf.validate.field).required is a required property, and a required body.
    assert "usage" in schemas["protomesh.cost.v1.RecordUsageRequest"]["required"]
    create = protomesh_spec["paths"]["/v1/documents"]["post"]["requestBody"]
    assert create["required"] is True
    names = protomesh_spec["paths"]["/v1/documents:batchGet"]["get"]["parameters"]
    batch = next(p for p in names if p.get("name") == "names")["schema"]
    assert (batch["minItems"], batch["maxItems"], batch["uniqueItems"]) == (1, 100, True)
    assert batch["items"]["pattern"].startswith("^documents/")


def test_protomesh_schemas_accept_what_the_services_print(
    protomesh_spec: dict[str, Any],
) -> None:
    from protomesh.cost.v1 import cost_service_pb2 as cost_pb
    from protomesh.document.v1 import document_service_pb2 as doc_pb
    from protomesh.task.v1 import task_service_pb2 as task_pb

    schemas = protomesh_spec["components"]["schemas"]
    resolver = {"components": {"schemas": schemas}}
    document = doc_pb.Document(name="documents/a", title="t", content="c", labels={"team": "x"})
    task = task_pb.Task(name="tasks/a", type="rag.answer", priority=3)
    budget = cost_pb.Budget(name="budgets/b", hard_limit_micros=5, alert_thresholds_percent=[50])
    for message in (document, task, budget, cost_pb.TenantTier(name="tenants/t/tier", tier="pro")):
        name = message.DESCRIPTOR.full_name
        schema = {**resolver, "$ref": f"#/components/schemas/{name}"}
        # As the gateway prints them by default (emit_unpopulated).
        jsonschema.validate(to_json(message, True), schema, cls=jsonschema.Draft202012Validator)


def test_the_3_0_form_validates_and_keeps_every_operation(
    protomesh_spec: dict[str, Any],
) -> None:
    from gateway.openapi30 import downgrade

    document = downgrade(protomesh_spec)
    assert document["openapi"] == "3.0.3"
    validate(document)
    assert protomesh_spec["openapi"] == "3.1.0"  # the original is left alone
    text = str(document)
    assert "propertyNames" not in text
    assert "'const'" not in text
    search = document["components"]["schemas"]["protomesh.cost.v1.ReserveRequest"]
    amount = search["properties"]["amountMicros"]
    assert amount["pattern"] == "^[0-9]+$"
    thresholds = document["components"]["schemas"]["protomesh.cost.v1.Budget"]["properties"][
        "alertThresholdsPercent"
    ]["items"]
    assert thresholds["minimum"] == 0
    assert thresholds["exclusiveMinimum"] is True
    for path, item in protomesh_spec["paths"].items():
        assert document["paths"][path].keys() == item.keys()


def test_messages_with_one_short_name_get_titles_that_tell_them_apart() -> None:
    from gateway.openapi import _unique_titles

    definitions: dict[str, Any] = {
        "protomesh.document.v1.Heartbeat": {"title": "Heartbeat"},
        "protomesh.task.v1beta2.Heartbeat": {"title": "Heartbeat"},
        "protomesh.task.v1.Task": {"title": "Task"},
    }
    _unique_titles(definitions)
    assert [d["title"] for d in definitions.values()] == [
        "DocumentHeartbeat",
        "TaskHeartbeat",
        "Task",
    ]

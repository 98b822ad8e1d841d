"""Request assembly: body/path/query precedence, AIP-127 agreement, header
bindings, PATCH masks derived from the body, and the JSON mapping table."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.binding import bind_request, bind_via_json
from gateway.fieldmask import paths_from_body
from gateway.jsonmap import BindError, loads, to_json
from gateway.routing import Route, Router, build_routes
from services.platform.catalog import FULL_NAMES, PROTOMESH_SERVICES, descriptor
from tests.integration.gateway.harness import SERVICE, Compiled


@pytest.fixture(scope="module")
def router(compiled: Compiled) -> Router:
    return Router(build_routes([SERVICE]))


def bind(
    router: Router,
    method: str,
    path: str,
    body: Any = None,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> Any:
    from gateway.query import parse_query_string

    route, values = router.match(method, path)
    return bind_request(route, values, parse_query_string(query), body, headers or {})


def test_body_star_and_path_agree(router: Router) -> None:
    request = bind(router, "POST", "/v1/echo/x:body", {"id": "x", "i32": 3})
    assert (request.id, request.i32) == ("x", 3)


def test_path_value_disagreeing_with_body_is_rejected(router: Router) -> None:
    with pytest.raises(BindError, match="in the body but 'y' in the path"):
        bind(router, "POST", "/v1/echo/y:body", {"id": "x"})


def test_nested_path_field_fills_the_body_field(router: Router) -> None:
    request = bind(router, "PUT", "/v1/echo/lbl", {"values": [1, 2]})
    assert request.nested.label == "lbl"
    assert list(request.nested.values) == [1, 2]


def test_query_sets_fields_outside_path_and_body(router: Router) -> None:
    request = bind(router, "POST", "/v1/things", {"title": "t"}, query="thingId=abc")
    assert (request.thing.title, request.thing_id) == ("t", "abc")


def test_body_star_leaves_no_room_for_query(router: Router) -> None:
    with pytest.raises(BindError, match="bound by the path or body"):
        bind(router, "POST", "/v1/echo", {}, query="i32=1")


def test_body_star_must_be_an_object(router: Router) -> None:
    with pytest.raises(BindError, match="JSON object"):
        bind(router, "POST", "/v1/echo", [1, 2])


def test_patch_without_mask_derives_it_from_body_keys(router: Router) -> None:
    body = {
        "title": "n",
        "settings": {"colour": "red"},
        "labels": {"a": "b"},
        "attributes": {"k": 1},
    }
    request = bind(router, "PATCH", "/v1/things/t", body)
    assert list(request.update_mask.paths) == ["title", "settings.colour", "labels", "attributes"]
    assert request.thing.name == "things/t"


def test_patch_with_explicit_mask_keeps_it(router: Router) -> None:
    request = bind(router, "PATCH", "/v1/things/t", {"title": "n"}, query="updateMask=kind")
    assert list(request.update_mask.paths) == ["kind"]


def test_if_match_sets_etag_and_idempotency_key_sets_request_id(router: Router) -> None:
    delete = bind(router, "DELETE", "/v1/things/t", headers={"if-match": 'W/"v7"'})
    assert delete.etag == "v7"
    create = bind(router, "POST", "/v1/things", {"title": "t"}, headers={"idempotency-key": "k"})
    assert create.request_id == "k"
    patch = bind(router, "PATCH", "/v1/things/t", {"title": "t"}, headers={"if-match": '"e1"'})
    assert patch.thing.etag == "e1"
    assert list(patch.update_mask.paths) == ["title"]


def test_if_match_disagreeing_with_body_etag_is_rejected(router: Router) -> None:
    with pytest.raises(BindError, match="If-Match"):
        bind(router, "PATCH", "/v1/things/t", {"etag": "a"}, headers={"if-match": '"b"'})


def test_unknown_json_field_is_rejected(router: Router) -> None:
    with pytest.raises(BindError, match="nope"):
        bind(router, "POST", "/v1/echo", {"nope": 1})


JSON_IN = [
    ({"i64": "9007199254740993"}, "i64", 9007199254740993),
    ({"i64": 12}, "i64", 12),
    ({"u64": "18446744073709551615"}, "u64", 18446744073709551615),
    ({"kind": "KIND_LARGE"}, "kind", 2),
    ({"kind": 1}, "kind", 1),
    ({"data": "aGk="}, "data", b"hi"),
    ({"dbl": "NaN"}, "dbl", "nan"),
    ({"request_id": "r"}, "request_id", "r"),
    ({"requestId": "r"}, "request_id", "r"),
    ({"maybeText": "x"}, "maybe_text.value", "x"),
    ({"maybeCount": 0}, "maybe_count", 0),
    ({"choiceNumber": "5"}, "choice_number", 5),
    ({"byNumber": {"7": "seven"}}, "by_number", {7: "seven"}),
    ({"counts": {"a": "3"}}, "counts", {"a": 3}),
    ({"doc": {"a": [1, "x", None]}}, "doc.fields.a.list_value.values.1.string_value", "x"),
    ({"anyValue": 3}, "any_value.number_value", 3),
]


@pytest.mark.parametrize(("body", "field", "expected"), JSON_IN)
def test_json_mapping_input(
    router: Router, body: dict[str, Any], field: str, expected: Any
) -> None:
    value: Any = bind(router, "POST", "/v1/echo", body)
    for part in field.split("."):
        if part.isdigit():
            value = value[int(part)]
        elif hasattr(value, part):
            value = getattr(value, part)
        else:
            value = value[part]
    if isinstance(expected, dict):
        value = dict(value)
    if expected == "nan":
        assert value != value
    else:
        assert value == expected


JSON_BAD = [
    ({"i32": "x"}, "i32"),
    ({"i32": 2**40}, "i32"),
    ({"kind": "KIND_HUGE"}, "KIND_HUGE"),
    ({"at": "not-a-time"}, "at"),
    ({"choiceText": "a", "choiceNumber": 1}, "oneof"),
    ({"id": "a", "id ": "b"}, "id "),
    ({"words": "notalist"}, "words"),
    ({"data": 5}, "data"),
]


@pytest.mark.parametrize(("body", "message"), JSON_BAD)
def test_json_mapping_rejects_bad_values(
    router: Router, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(BindError, match=message):
        bind(router, "POST", "/v1/echo", body)


def test_json_output_uses_camel_case_int64_strings_and_enum_names(compiled: Compiled) -> None:
    pb = compiled.pb2
    message = pb.Thing(name="things/a", kind=pb.KIND_LARGE, weight=2**53 + 1)
    out = to_json(message, emit_unpopulated=True)
    assert out["weight"] == str(2**53 + 1)
    assert out["kind"] == "KIND_LARGE"
    assert "createTime" not in out
    assert out["etag"] == ""
    assert to_json(message, emit_unpopulated=False).keys() == {"name", "kind", "weight"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not valid JSON"),
        (b"\xff", "UTF-8"),
        (b"NaN", "not valid JSON"),
        (b"[" * 100 + b"]" * 100, "nests deeper"),
    ],
)
def test_loads_rejects_bad_documents(raw: bytes, message: str) -> None:
    with pytest.raises(BindError, match=message):
        loads(raw)


def test_field_mask_paths_stop_at_maps_and_well_known_types(compiled: Compiled) -> None:
    desc = compiled.pb2.Thing.DESCRIPTOR
    body = {"labels": {"a": "b"}, "createTime": "x", "settings": {"size": 1}, "unknown": 1}
    assert paths_from_body(desc, body) == ["labels", "create_time", "settings.size"]


# --- path-only requests: built directly, the same as through the JSON mapping ---


@pytest.fixture(scope="module")
def all_routes(compiled: Compiled) -> list[Route]:
    for key in FULL_NAMES:
        descriptor(key)  # registers the service in the default pool
    return build_routes([SERVICE, *PROTOMESH_SERVICES])


def test_path_only_routes_exist_for_gets_and_deletes_by_name(all_routes: list[Route]) -> None:
    direct = [r for r in all_routes if r.path_attributes is not None]
    assert any(r.method.name == "GetThing" for r in direct)
    assert any(r.method.name == "GetDocument" for r in direct)
    nested = next(r for r in all_routes if r.template.source == "/v1/echo/{nested.label}")
    assert nested.path_attributes == (("nested.label", ("nested", "label")),)


PATH_TEXT = st.text(st.characters(codec="ascii", exclude_characters="/"), min_size=1, max_size=12)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_path_only_binding_equals_the_json_mapping(
    all_routes: list[Route], data: st.DataObject
) -> None:
    routes = [r for r in all_routes if r.path_attributes is not None and not r.body]
    route = data.draw(st.sampled_from(routes))
    values = {dotted: data.draw(PATH_TEXT) for dotted, _ in route.path_attributes or ()}
    direct = bind_request(route, values, [], None, {})
    assert direct == bind_via_json(route, values, [], None, {})
    assert direct.SerializeToString(deterministic=True) == bind_via_json(
        route, values, [], None, {}
    ).SerializeToString(deterministic=True)


def test_header_bound_fields_and_queries_still_use_the_json_mapping(router: Router) -> None:
    request = bind(router, "DELETE", "/v1/things/a", headers={"if-match": '"v3"'})
    assert (request.name, request.etag) == ("things/a", "v3")
    listed = bind(router, "GET", "/v1/things/a", query="readMask=title")
    assert list(listed.read_mask.paths) == ["title"]

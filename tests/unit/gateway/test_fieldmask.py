"""PATCH masks derived from the body: which keys become paths, where paths stop
(maps, repeated fields, well-known types), and finding a request's update_mask."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from gateway.fieldmask import mask_field, paths_from_body
from protomesh.document.v1 import document_service_pb2
from tests.integration.gateway.harness import Compiled


@pytest.fixture(scope="module")
def pb(compiled: Compiled) -> Any:
    return compiled.pb2


def test_top_level_scalar_keys_become_paths(pb: Any) -> None:
    assert paths_from_body(pb.Thing.DESCRIPTOR, {"title": "t", "weight": "5"}) == [
        "title",
        "weight",
    ]


def test_json_names_become_proto_field_names(pb: Any) -> None:
    body = {"requestId": "r", "maybeText": "x", "anyValue": 1}
    assert paths_from_body(pb.EchoRequest.DESCRIPTOR, body) == [
        "request_id",
        "maybe_text",
        "any_value",
    ]


def test_paths_keep_the_order_of_the_body(pb: Any) -> None:
    body = {"kind": "KIND_SMALL", "etag": "e", "title": "t", "name": "things/a"}
    assert paths_from_body(pb.Thing.DESCRIPTOR, body) == ["kind", "etag", "title", "name"]


def test_nested_plain_message_contributes_its_own_keys(pb: Any) -> None:
    body = {"settings": {"colour": "red", "size": 2}}
    assert paths_from_body(pb.Thing.DESCRIPTOR, body) == ["settings.colour", "settings.size"]


def test_nested_messages_recurse_to_any_depth(pb: Any) -> None:
    body = {"nested": {"label": "a", "child": {"child": {"values": [1]}}}}
    assert paths_from_body(pb.EchoRequest.DESCRIPTOR, body) == [
        "nested.label",
        "nested.child.child.values",
    ]


def test_nested_json_names_become_proto_names(pb: Any) -> None:
    body = {"filter": {"minWeight": 1.5, "inner": {"tag": "t"}}}
    assert paths_from_body(pb.ListThingsRequest.DESCRIPTOR, body) == [
        "filter.min_weight",
        "filter.inner.tag",
    ]


def test_empty_nested_object_replaces_the_whole_message(pb: Any) -> None:
    assert paths_from_body(pb.Thing.DESCRIPTOR, {"settings": {}}) == ["settings"]


def test_null_nested_message_replaces_the_whole_message(pb: Any) -> None:
    assert paths_from_body(pb.Thing.DESCRIPTOR, {"settings": None}) == ["settings"]


def test_non_object_value_for_a_message_field_is_its_own_path(pb: Any) -> None:
    # The JSON mapping rejects it later; the mask just names the field.
    assert paths_from_body(pb.Thing.DESCRIPTOR, {"settings": "red"}) == ["settings"]


def test_map_field_is_replaced_whole(pb: Any) -> None:
    assert paths_from_body(pb.Thing.DESCRIPTOR, {"labels": {"team": "a", "tier": "b"}}) == [
        "labels"
    ]


def test_repeated_message_field_is_replaced_whole(pb: Any) -> None:
    body = {"items": [{"label": "a"}, {"label": "b"}]}
    assert paths_from_body(pb.EchoRequest.DESCRIPTOR, body) == ["items"]


def test_repeated_scalar_field_is_replaced_whole(pb: Any) -> None:
    assert paths_from_body(pb.EchoRequest.DESCRIPTOR, {"words": ["a", "b"]}) == ["words"]


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("doc", {"a": {"b": 1}}, "doc"),
        ("anyValue", {"a": 1}, "any_value"),
        ("at", {"seconds": 1}, "at"),
        ("wait", "1s", "wait"),
        ("mask", "a,b", "mask"),
        ("maybeText", {"value": "x"}, "maybe_text"),
        ("maybeNumber", 1.5, "maybe_number"),
    ],
)
def test_well_known_types_are_replaced_whole(pb: Any, key: str, value: Any, path: str) -> None:
    assert paths_from_body(pb.EchoRequest.DESCRIPTOR, {key: value}) == [path]


def test_struct_object_is_not_split_into_its_keys(pb: Any) -> None:
    body = {"attributes": {"colour": "red", "size": {"w": 1}}}
    assert paths_from_body(pb.Thing.DESCRIPTOR, body) == ["attributes"]


def test_unknown_keys_are_skipped_at_every_level(pb: Any) -> None:
    body = {"nope": 1, "settings": {"colour": "red", "nope": 2}, "title": "t"}
    assert paths_from_body(pb.Thing.DESCRIPTOR, body) == ["settings.colour", "title"]


def test_empty_body_names_no_paths(pb: Any) -> None:
    assert paths_from_body(pb.Thing.DESCRIPTOR, {}) == []


def test_oneof_message_member_contributes_nested_paths(pb: Any) -> None:
    body = {"choiceNested": {"label": "x"}}
    assert paths_from_body(pb.EchoRequest.DESCRIPTOR, body) == ["choice_nested.label"]


def test_prefix_is_prepended_to_every_path(pb: Any) -> None:
    body = {"colour": "red", "size": 1}
    assert paths_from_body(pb.Settings.DESCRIPTOR, body, "thing.settings.") == [
        "thing.settings.colour",
        "thing.settings.size",
    ]


def test_project_document_body_stops_at_labels_metadata_and_timestamps() -> None:
    desc = document_service_pb2.Document.DESCRIPTOR
    body = {
        "title": "t",
        "labels": {"a": "b"},
        "metadata": {"source": {"kind": "web"}},
        "updateTime": "2024-01-01T00:00:00Z",
        "mimeType": "text/plain",
    }
    assert paths_from_body(desc, body) == [
        "title",
        "labels",
        "metadata",
        "update_time",
        "mime_type",
    ]


def test_mask_field_finds_update_mask(pb: Any) -> None:
    field = mask_field(pb.UpdateThingRequest.DESCRIPTOR)
    assert field is not None
    assert field.name == "update_mask"
    assert field.message_type.full_name == "google.protobuf.FieldMask"


def test_mask_field_finds_update_mask_of_project_requests() -> None:
    field = mask_field(document_service_pb2.UpdateDocumentRequest.DESCRIPTOR)
    assert field is not None
    assert field.name == "update_mask"


@pytest.mark.parametrize("message", ["GetThingRequest", "ListThingsRequest", "EchoRequest"])
def test_mask_field_ignores_other_field_masks(pb: Any, message: str) -> None:
    # read_mask and other FieldMask fields are not update masks.
    assert mask_field(getattr(pb, message).DESCRIPTOR) is None


def test_mask_field_requires_the_field_mask_type() -> None:
    pool = descriptor_pool.DescriptorPool()
    proto = descriptor_pb2.FileDescriptorProto(name="masktest.proto", package="masktest")
    message = proto.message_type.add(name="UpdateRequest")
    message.field.add(
        name="update_mask",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool.Add(proto)
    desc = pool.FindMessageTypeByName("masktest.UpdateRequest")
    assert mask_field(desc) is None

"""The compiled JSON printer says exactly what json_format.MessageToDict says —
same keys, values and key order — for every message of the test protos and of
protomesh's services, filled at random (every field kind, unset and set fields,
maps, repeated fields, oneofs, well-known types, unknown enum numbers)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.printer import JsonPrinter
from protomesh.cost.v1 import cost_service_pb2
from protomesh.document.v1 import document_service_pb2
from protomesh.search.v1 import search_service_pb2
from protomesh.task.v1 import task_service_pb2
from tests.integration.gateway.harness import Compiled

INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
TEXT = st.text(max_size=12)


def messages_of(module: Any) -> list[type[Message]]:
    classes: list[type[Message]] = []
    pending = [getattr(module, name) for name in module.DESCRIPTOR.message_types_by_name]
    while pending:
        cls = pending.pop()
        classes.append(cls)
        pending.extend(getattr(cls, nested.name) for nested in cls.DESCRIPTOR.nested_types)
    return [c for c in classes if not c.DESCRIPTOR.GetOptions().map_entry]


@pytest.fixture(scope="module")
def classes(compiled: Compiled) -> list[type[Message]]:
    modules = (
        compiled.pb2,
        document_service_pb2,
        search_service_pb2,
        task_service_pb2,
        cost_service_pb2,
    )
    return [cls for module in modules for cls in messages_of(module)]


def scalar(draw: st.DrawFn, field: FieldDescriptor) -> Any:
    kind = field.cpp_type
    if kind == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return draw(st.binary(max_size=12))
        return draw(TEXT)
    if kind == FieldDescriptor.CPPTYPE_BOOL:
        return draw(st.booleans())
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        return draw(st.one_of(st.integers(low, high), st.sampled_from([0, low, high])))
    if kind == FieldDescriptor.CPPTYPE_DOUBLE:
        return draw(st.floats(allow_nan=True, allow_infinity=True))
    if kind == FieldDescriptor.CPPTYPE_FLOAT:
        return draw(st.floats(width=32, allow_nan=True, allow_infinity=True))
    if kind == FieldDescriptor.CPPTYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        # Open enums keep numbers they do not name; the printer must print them too.
        return draw(st.one_of(st.sampled_from(numbers), st.integers(0, 1000)))
    raise AssertionError(f"unexpected kind of {field.full_name}")


def fill(draw: st.DrawFn, message: Message, depth: int) -> None:
    """Sets a random subset of the message's fields to random values."""
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        message.FromSeconds(draw(st.integers(0, 253402300799)))  # type: ignore[attr-defined]
        return
    if name == "google.protobuf.Duration":
        message.FromNanoseconds(draw(st.integers(-(10**15), 10**15)))  # type: ignore[attr-defined]
        return
    if name == "google.protobuf.FieldMask":
        paths = draw(st.lists(st.from_regex(r"[a-z][a-z_]{0,4}[a-z]", fullmatch=True)))
        message.paths.extend(paths)  # type: ignore[attr-defined]
        return
    if name in ("google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"):
        value = struct_pb2.Value()
        value.string_value = draw(TEXT)
        if name == "google.protobuf.Struct":
            message.fields["key"].CopyFrom(value)  # type: ignore[attr-defined]
        elif name == "google.protobuf.Value":
            message.CopyFrom(value)
        else:
            message.values.append(value)  # type: ignore[attr-defined]
        return
    if name == "google.protobuf.Any":
        inner = struct_pb2.Value(number_value=draw(st.integers(-5, 5)))
        message.Pack(inner)  # type: ignore[attr-defined]
        return
    for field in message.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue
        fill_field(draw, message, field, depth)


def fill_field(draw: st.DrawFn, message: Message, field: FieldDescriptor, depth: int) -> None:
    target: Any = message
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        for _ in range(draw(st.integers(0, 2))):
            key = scalar(draw, key_field)
            if value_field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                if depth < 3:
                    fill(draw, getattr(target, field.name)[key], depth + 1)
            else:
                getattr(target, field.name)[key] = scalar(draw, value_field)
        return
    if field.is_repeated:
        for _ in range(draw(st.integers(0, 2))):
            if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                if depth < 3:
                    fill(draw, getattr(target, field.name).add(), depth + 1)
            else:
                getattr(target, field.name).append(scalar(draw, field))
        return
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        if depth < 3:
            child = getattr(target, field.name)
            child.SetInParent()
            fill(draw, child, depth + 1)
        return
    setattr(target, field.name, scalar(draw, field))


def json_format_says(message: Message, emit_unpopulated: bool) -> Any:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=emit_unpopulated)


def same_text(a: Any, b: Any) -> bool:
    """Equal as printed (key order included; NaN equal to NaN)."""
    return json.dumps(a, allow_nan=True) == json.dumps(b, allow_nan=True)


def outcome(print_: Any, message: Message) -> Any:
    """The printed form, or the kind of error printing raised."""
    try:
        return print_(message)
    except json_format.Error as exc:
        return type(exc).__name__


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), emit_unpopulated=st.booleans())
def test_printer_matches_json_format_on_random_messages(
    classes: list[type[Message]], data: st.DataObject, emit_unpopulated: bool
) -> None:
    cls = data.draw(st.sampled_from(classes))
    message = cls()
    fill(data.draw, message, 0)
    printer = JsonPrinter(emit_unpopulated)
    expected = outcome(lambda m: json_format_says(m, emit_unpopulated), message)
    assert same_text(outcome(printer.to_json, message), expected)


@pytest.mark.parametrize("emit_unpopulated", [True, False])
def test_printer_matches_json_format_on_empty_messages(
    classes: list[type[Message]], emit_unpopulated: bool
) -> None:
    printer = JsonPrinter(emit_unpopulated)
    for cls in classes:
        message = cls()
        assert same_text(printer.to_json(message), json_format_says(message, emit_unpopulated))


def test_printer_compiles_plain_messages_and_leaves_well_known_types_to_json_format(
    compiled: Compiled,
) -> None:
    printer = JsonPrinter(True)
    thing = compiled.pb2.Thing(name="things/a", weight=2**40)
    thing.create_time.FromSeconds(1_700_000_000)
    printed = printer.to_json(thing)
    assert printed["weight"] == "1099511627776"
    assert printed["createTime"] == "2023-11-14T22:13:20Z"
    compiled_for: dict[Descriptor, Any] = printer._converters
    assert compiled_for[thing.DESCRIPTOR] != printer._json_format
    printer.to_json(struct_pb2.Struct())
    assert compiled_for[struct_pb2.Struct.DESCRIPTOR] == printer._json_format


def test_an_out_of_range_timestamp_fails_as_json_format_fails(compiled: Compiled) -> None:
    thing = compiled.pb2.Thing()
    thing.create_time.seconds = 10**13  # past year 9999
    with pytest.raises(json_format.Error):
        json_format_says(thing, True)
    with pytest.raises(json_format.Error):
        JsonPrinter(True).to_json(thing)

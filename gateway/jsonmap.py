"""Proto3 JSON mapping helpers: field lookup by proto or JSON name, text → JSON
values for path and query bindings, and message ↔ JSON with protobuf's json_format.

Everything that turns untrusted text into a message goes through `parse_into`,
which raises `BindError` (a 400) for anything the mapping rejects.
"""

from __future__ import annotations

import json
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

SCALAR_WKTS = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue",
        "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
    }
)
WRAPPERS = frozenset(n for n in SCALAR_WKTS if n.endswith("Value"))
# Messages whose JSON form is not an object of their fields.
OPAQUE_WKTS = SCALAR_WKTS | {
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Any",
    "google.protobuf.Empty",
}

_ENUM_NUMBER = re.compile(r"-?[0-9]+")
_INT_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})

MAX_JSON_DEPTH = 64


class BindError(ValueError):
    """A request cannot be mapped onto its message (always the caller's fault: 400).

    `field` names the offending field or parameter for BadRequest details."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class NotJson(BindError):
    """The bytes are not a JSON document at all (bad UTF-8 or bad syntax), as
    opposed to JSON that does not fit the message."""


def is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def is_map(field: FieldDescriptor) -> bool:
    return (
        is_repeated(field)
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def message_type(field: FieldDescriptor) -> Descriptor:
    """The message type of a message field (TypeError for other fields)."""
    if field.message_type is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return field.message_type


def enum_type(field: FieldDescriptor) -> EnumDescriptor:
    if field.enum_type is None:
        raise TypeError(f"{field.full_name} is not an enum field")
    return field.enum_type


def message_name(field: FieldDescriptor) -> str:
    return field.message_type.full_name if field.message_type is not None else ""


def find_field(desc: Descriptor, name: str) -> FieldDescriptor | None:
    """A field by its proto name or its JSON (lowerCamelCase) name."""
    field = desc.fields_by_name.get(name)
    if field is not None:
        return field
    for candidate in desc.fields:
        if candidate.json_name == name:
            return candidate
    return None


def resolve_path(desc: Descriptor, dotted: str) -> list[FieldDescriptor]:
    """Resolves `a.b.c` through singular message fields; KeyError with the reason."""
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = desc
    for part in dotted.split("."):
        if current is None:
            raise KeyError(f"{'.'.join(f.name for f in fields)!r} is not a message")
        field = find_field(current, part)
        if field is None:
            raise KeyError(f"{current.full_name} has no field {part!r}")
        fields.append(field)
        current = None if is_repeated(field) else field.message_type
    return fields


def text_to_json(field: FieldDescriptor, text: str) -> Any:
    """Converts one path/query text value to the JSON value json_format expects."""
    kind = field.type
    where = field.name
    if kind == FieldDescriptor.TYPE_MESSAGE:
        name = message_name(field)
        if name in WRAPPERS:
            return text_to_json(message_type(field).fields_by_name["value"], text)
        if name in SCALAR_WKTS:
            return text
        raise BindError(f"field {where!r} is a message and cannot be set from text", where)
    if kind == FieldDescriptor.TYPE_BOOL:
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise BindError(f"field {where!r} expects true or false, got {text!r}", where)
    if kind in _INT_TYPES:
        try:
            int(text, 10)
        except ValueError:
            raise BindError(f"field {where!r} expects an integer, got {text!r}", where) from None
        return text
    if kind in _FLOAT_TYPES:
        if text in ("NaN", "Infinity", "-Infinity"):
            return text
        try:
            float(text)
        except ValueError:
            raise BindError(f"field {where!r} expects a number, got {text!r}", where) from None
        return text
    if kind == FieldDescriptor.TYPE_ENUM:
        if _ENUM_NUMBER.fullmatch(text):  # ASCII digits: "²".isdigit() is true
            try:
                return int(text)
            except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
                raise BindError(
                    f"field {where!r} expects an enum number, got {text!r}", where
                ) from None
        if enum_type(field).values_by_name.get(text) is None:
            names = ", ".join(v.name for v in enum_type(field).values)
            raise BindError(f"field {where!r} expects one of {names}; got {text!r}", where)
        return text
    return text


def loads(raw: bytes) -> Any:
    """Parses a JSON document, rejecting bad UTF-8, bad JSON and absurd nesting."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotJson("request body is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise NotJson(f"request body is not valid JSON: {exc}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise BindError(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    depth = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            depth = max(depth, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            depth = max(depth, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((v, level + 1) for v in item)
    return depth


def parse_into(data: dict[str, Any], message: Message) -> None:
    """Fills `message` from a JSON object; unknown fields and bad values → BindError."""
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise BindError(str(exc)) from None
    except (ValueError, TypeError, OverflowError, RecursionError, AttributeError) as exc:
        raise BindError(f"invalid value: {exc}") from None


def to_json(message: Message, emit_unpopulated: bool) -> Any:
    """The proto3 JSON form of a message (lowerCamelCase names, int64 as strings)."""
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=emit_unpopulated,
        preserving_proto_field_name=False,
    )


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

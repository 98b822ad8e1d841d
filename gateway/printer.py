"""Messages → their proto3 JSON form, with one converter built per message type.

`JsonPrinter(emit_unpopulated).to_json(message)` returns exactly what
`json_format.MessageToDict(message, always_print_fields_with_no_presence=
emit_unpopulated)` returns (same keys, values and key order), in about half the
time: json_format decides each field's kind on every call, this decides it once per
message type (docs/benchmarks.md, gateway profile). A converter walks
`message.ListFields()` — the set fields in field-number order, as json_format does —
then adds the unset fields without presence in declaration order.

Messages with a field kind whose JSON form has subtleties this module does not
repeat (closed enums, which fail on unknown numbers; enum values renamed by the
`pb.enumvalue.json` option; extensions) and the well-known types with a special
JSON form are printed by json_format itself, so they too come out exactly as
before. Timestamp, Duration and FieldMask values are printed with their
`ToJsonString()` and `float` values with protobuf's `ToShortestFloat`, which is
what json_format calls for them.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.internal.type_checkers import ToShortestFloat  # json_format's, for floats
from google.protobuf.message import Message

from gateway.jsonmap import enum_type, is_map, message_type, to_json

Converter = Callable[[Any], Any]

_BY_JSON_STRING = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)
_NULL_VALUE = "google.protobuf.NullValue"
_ENUM_JSON_OPTION = "pb.enumvalue.json"


class JsonPrinter:
    """proto3 JSON (lowerCamelCase names, int64 as strings, enums by name) of any
    message; `emit_unpopulated` prints fields without presence at their defaults."""

    def __init__(self, emit_unpopulated: bool) -> None:
        self.emit_unpopulated = emit_unpopulated
        self._converters: dict[Descriptor, Converter] = {}
        self._enums_renamed = _enum_json_option_exists()

    def to_json(self, message: Message) -> Any:
        desc: Any = message.DESCRIPTOR
        convert = self._converters.get(desc)
        if convert is None:
            convert = self._converters[desc] = self._compile(desc)
        return convert(message)

    def _json_format(self, message: Message) -> Any:
        return to_json(message, self.emit_unpopulated)

    def _compile(self, desc: Descriptor) -> Converter:
        if (
            desc.full_name.startswith("google.protobuf.")
            or desc.extension_ranges
            or not all(self._handles(field) for field in desc.fields)
        ):
            return self._json_format
        by_field = {field: (field.json_name, self._field_converter(field)) for field in desc.fields}
        unpopulated = [_unpopulated(field, by_field[field][1]) for field in desc.fields]
        defaults = [entry for entry in unpopulated if entry is not None]
        emit = self.emit_unpopulated
        fallback = self._json_format

        def convert(message: Message) -> Any:
            js: dict[str, Any] = {}
            try:
                for field, value in message.ListFields():
                    name, convert_value = by_field[field]
                    js[name] = convert_value(value)
            except (KeyError, ValueError):
                # Not expected (a field of another type, a Timestamp out of range):
                # json_format answers, or raises its own error, as before.
                return fallback(message)
            if emit:
                for name, default in defaults:
                    if name not in js:
                        js[name] = default()
            return js

        return convert

    def _handles(self, field: FieldDescriptor) -> bool:
        """Whether this module prints the field exactly as json_format does."""
        if is_map(field):
            entry = message_type(field).fields_by_name
            return self._handles(entry["key"]) and self._handles(entry["value"])
        if field.type == FieldDescriptor.TYPE_ENUM:
            return not self._enums_renamed and not enum_type(field).is_closed
        return True

    def _field_converter(self, field: FieldDescriptor) -> Converter:
        if is_map(field):
            entry = message_type(field)
            value = self._value_converter(entry.fields_by_name["value"])
            if entry.fields_by_name["key"].type == FieldDescriptor.TYPE_BOOL:
                return lambda items: {("true" if k else "false"): value(items[k]) for k in items}
            return lambda items: {str(k): value(items[k]) for k in items}
        value = self._value_converter(field)
        if field.is_repeated:
            if value is _same:
                return list
            return lambda items: [value(item) for item in items]
        return value

    def _value_converter(self, field: FieldDescriptor) -> Converter:
        """One value of the field (an element, for repeated fields)."""
        kind = field.cpp_type
        if kind == FieldDescriptor.CPPTYPE_MESSAGE:
            if message_type(field).full_name in _BY_JSON_STRING:
                return _json_string
            return self.to_json
        if kind == FieldDescriptor.CPPTYPE_ENUM:
            if enum_type(field).full_name == _NULL_VALUE:
                return _null
            by_number = enum_type(field).values_by_number
            names = {number: value.name for number, value in by_number.items()}
            return lambda number: names.get(number, number)
        if field.type == FieldDescriptor.TYPE_BYTES:
            return _base64
        if kind == FieldDescriptor.CPPTYPE_BOOL:
            return bool
        if kind in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64):
            return str
        if kind == FieldDescriptor.CPPTYPE_DOUBLE:
            return _double
        if kind == FieldDescriptor.CPPTYPE_FLOAT:
            return _float
        return _same  # strings, 32-bit integers


def _unpopulated(
    field: FieldDescriptor, convert: Converter
) -> tuple[str, Callable[[], Any]] | None:
    """(JSON name, factory of its printed default) for a field printed when unset."""
    if field.has_presence:
        return None
    if is_map(field):
        return field.json_name, dict
    if field.is_repeated:
        return field.json_name, list
    default = convert(field.default_value)  # a str, number or bool: safe to share
    return field.json_name, lambda: default


def _enum_json_option_exists() -> bool:
    try:
        descriptor_pool.Default().FindExtensionByName(_ENUM_JSON_OPTION)
    except KeyError:
        return False
    return True


def _same(value: Any) -> Any:
    return value


def _null(value: Any) -> None:
    return None


def _json_string(message: Any) -> str:
    text: str = message.ToJsonString()
    return text


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _double(value: float) -> float | str:
    if math.isinf(value):
        return "-Infinity" if value < 0.0 else "Infinity"
    if math.isnan(value):
        return "NaN"
    return value


def _float(value: float) -> float | str:
    if math.isinf(value) or math.isnan(value):
        return _double(value)
    shortest: float = ToShortestFloat(value)
    return shortest

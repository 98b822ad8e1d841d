"""Message descriptors → JSON Schema (2020-12, as OpenAPI 3.1 uses), matching the
proto3 JSON mapping the gateway speaks: lowerCamelCase property names, 64-bit
integers as strings, enums by name, well-known types in their JSON forms, maps as
objects, repeated as arrays, one property of a oneof at most.

`field_behavior` maps to `required` (REQUIRED), `readOnly` (OUTPUT_ONLY) and
`writeOnly` (INPUT_ONLY); protovalidate rules map to lengths, patterns, ranges and
`required` (gateway/constraints.py). Doc comments become descriptions.

Used by the OpenAPI document (refs into `#/components/schemas/`) and reusable
elsewhere (e.g. MCP tool input/output schemas) through `message_json_schema`,
which returns one self-contained schema with `$defs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.comments import Comments
from gateway.constraints import constrain, is_required
from gateway.jsonmap import enum_type, is_map, is_repeated, message_type

Schema = dict[str, Any]

_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
_UINT64 = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}
_INT32 = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
_UINT32 = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32}
_MAX_ONEOF_PAIRS = 45  # a 10-member oneof; larger ones are only described

_WKT: dict[str, Schema] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 timestamp, e.g. `2024-01-02T03:04:05.678Z`.",
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "description": "Duration in seconds with an `s` suffix, e.g. `1.5s`.",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated lowerCamelCase field paths, e.g. `title,labels`.",
    },
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
}


def _int64(unsigned: bool) -> Schema:
    return {
        "type": "string",
        "format": "uint64" if unsigned else "int64",
        "pattern": r"^[0-9]+$" if unsigned else r"^-?[0-9]+$",
    }


def scalar_schema(field: FieldDescriptor) -> Schema:
    kind = field.type
    if kind in _INT64:
        return _int64(False)
    if kind in _UINT64:
        return _int64(True)
    if kind in _INT32:
        return {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
    if kind in _UINT32:
        return {"type": "integer", "format": "uint32", "minimum": 0, "maximum": 2**32 - 1}
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return {"type": "number", "format": "double"}
    if kind == FieldDescriptor.TYPE_FLOAT:
        return {"type": "number", "format": "float"}
    if kind == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == FieldDescriptor.TYPE_BYTES:
        return {"type": "string", "format": "byte", "contentEncoding": "base64"}
    return {"type": "string"}


def behaviors(field: FieldDescriptor) -> set[int]:
    options = field.GetOptions()
    return set(options.Extensions[field_behavior_pb2.field_behavior])


def is_synthetic_oneof_member(field: FieldDescriptor) -> bool:
    oneof = field.containing_oneof
    return oneof is not None and len(oneof.fields) == 1 and oneof.name == "_" + field.name


class SchemaBuilder:
    """Builds schemas, collecting named definitions for messages and enums."""

    def __init__(
        self, comments: Comments | None = None, ref_prefix: str = "#/components/schemas/"
    ) -> None:
        self.comments = comments or Comments()
        self.ref_prefix = ref_prefix
        self.definitions: dict[str, Schema] = {}

    def message(self, desc: Descriptor) -> Schema:
        """A schema for a message: inline for well-known types, else a `$ref`."""
        name = desc.full_name
        if name in _WKT:
            return dict(_WKT[name])
        if name.startswith("google.protobuf.") and name.endswith("Value"):
            return self.field(desc.fields_by_name["value"])
        if name not in self.definitions:
            self.definitions[name] = {}  # placeholder: recursion refers to it
            self.definitions[name] = self._message_definition(desc)
        return {"$ref": self.ref_prefix + name}

    def message_without(self, desc: Descriptor, bound: Sequence[str], name: str) -> Schema:
        """A `$ref` to a schema `name` of `desc` without the fields at the dotted
        paths `bound` (set by the URL path, so a body does not carry them: what
        grpc-gateway does for `body: "*"`)."""
        if name not in self.definitions:
            self.definitions[name] = {}
            self.definitions[name] = self._definition_without(desc, bound)
        return {"$ref": self.ref_prefix + name}

    def _definition_without(self, desc: Descriptor, bound: Sequence[str]) -> Schema:
        definition = self._message_definition(desc)
        definition["title"] = f"{desc.name}Body"
        properties: dict[str, Schema] = definition["properties"]
        required: list[str] = definition.get("required", [])
        for path in bound:
            head, _, rest = path.partition(".")
            field = desc.fields_by_name[head]
            if not rest:
                properties.pop(field.json_name, None)
                if field.json_name in required:
                    required.remove(field.json_name)
                continue
            inner = [p.partition(".")[2] for p in bound if p.partition(".")[0] == head]
            properties[field.json_name] = self._definition_without(message_type(field), inner)
        if required:
            definition["required"] = required
        else:
            definition.pop("required", None)
        return definition

    def enum(self, desc: EnumDescriptor) -> Schema:
        name = desc.full_name
        if name == "google.protobuf.NullValue":
            return {"type": "null"}
        if name not in self.definitions:
            schema: Schema = {"type": "string", "enum": [v.name for v in desc.values]}
            lines = [self.comments.get(name)]
            for value in desc.values:
                text = self.comments.get(f"{name}.{value.name}")
                if text:
                    lines.append(f"- `{value.name}`: {' '.join(text.split())}")
            description = "\n".join(line for line in lines if line)
            if description:
                schema["description"] = description
            self.definitions[name] = schema
        return {"$ref": self.ref_prefix + name}

    def _message_definition(self, desc: Descriptor) -> Schema:
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for field in desc.fields:
            schema = self.field(field)
            found = behaviors(field)
            if field_behavior_pb2.OUTPUT_ONLY in found:
                schema["readOnly"] = True
            if field_behavior_pb2.INPUT_ONLY in found:
                schema["writeOnly"] = True
            text = self.comments.get(f"{desc.full_name}.{field.name}")
            if field_behavior_pb2.IMMUTABLE in found:
                text = f"{text}\n\nImmutable: set on create only.".strip()
            if text:
                schema = self._describe(schema, text)
            properties[field.json_name] = schema
            if field_behavior_pb2.REQUIRED in found or is_required(field):
                required.append(field.json_name)
        definition: Schema = {
            "type": "object",
            "title": desc.name,
            "properties": properties,
            "additionalProperties": False,
        }
        description = self.comments.get(desc.full_name)
        exclusive = self._oneof_rules(desc)
        if exclusive:
            definition["allOf"] = exclusive
        notes = [
            "At most one of " + ", ".join(f"`{f.json_name}`" for f in oneof.fields) + " is set."
            for oneof in desc.oneofs
            if not is_synthetic_oneof_member(oneof.fields[0])
        ]
        description = "\n\n".join(x for x in [description, *notes] if x)
        if description:
            definition["description"] = description
        if required:
            definition["required"] = required
        return definition

    def _oneof_rules(self, desc: Descriptor) -> list[Schema]:
        rules: list[Schema] = []
        for oneof in desc.oneofs:
            members = [f.json_name for f in oneof.fields]
            if len(members) < 2:
                continue
            pairs = list(combinations(members, 2))
            if len(pairs) > _MAX_ONEOF_PAIRS:
                continue
            rules.append({"not": {"anyOf": [{"required": list(p)} for p in pairs]}})
        return rules

    def _describe(self, schema: Schema, text: str) -> Schema:
        if "$ref" in schema:
            # Siblings of $ref are allowed in 3.1, but keep refs pure for older tools.
            return {"allOf": [schema], "description": text}
        note = schema.get("description")  # what the field's rules added
        schema["description"] = f"{text}\n\n{note}" if note else text
        return schema

    def field(self, field: FieldDescriptor) -> Schema:
        """A field's schema (maps, repeated and singular), with its protovalidate rules."""
        return constrain(field, self._unconstrained(field))

    def _unconstrained(self, field: FieldDescriptor) -> Schema:
        if is_map(field):
            value = message_type(field).fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        if is_repeated(field):
            return {"type": "array", "items": self._single(field)}
        return self._single(field)

    def _single(self, field: FieldDescriptor) -> Schema:
        if field.type == FieldDescriptor.TYPE_MESSAGE or field.type == FieldDescriptor.TYPE_GROUP:
            return self.message(message_type(field))
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum(enum_type(field))
        return scalar_schema(field)


def message_json_schema(desc: Descriptor, comments: Comments | None = None) -> Schema:
    """One self-contained JSON Schema for a message (definitions under `$defs`)."""
    builder = SchemaBuilder(comments, ref_prefix="#/$defs/")
    root = builder.message(desc)
    schema: Schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **root}
    if builder.definitions:
        schema["$defs"] = builder.definitions
    return schema

"""Query parameters → request fields (google/api/http.proto, grpc-gateway style).

Every request field that is bound neither by the path nor by the body can be set
from the query string: `a.b=1` for nested fields (proto or JSON names), `x=1&x=2`
for repeated fields, `labels[key]=value` for maps with scalar values, enums by
name or number, Timestamp (RFC 3339), Duration (`1.5s`), FieldMask (comma list)
and wrappers by their JSON text. Anything else is a 400 with a clear message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.jsonmap import (
    SCALAR_WKTS,
    BindError,
    find_field,
    is_map,
    is_repeated,
    message_name,
    message_type,
    text_to_json,
)

MAX_QUERY_PARAMETERS = 256
_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\[([^\]]*)\])?$")


def parse_query_string(query: str) -> list[tuple[str, str]]:
    """Splits a raw query string; malformed percent-encoding or too many pairs → 400."""
    if not query:
        return []
    try:
        return parse_qsl(
            query,
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_QUERY_PARAMETERS,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise BindError(f"malformed query string: {exc}") from None


def _is_leaf_message(field: FieldDescriptor) -> bool:
    return message_name(field) in SCALAR_WKTS


def bind_query(
    desc: Descriptor, items: Iterable[tuple[str, str]], bound: Iterable[str]
) -> dict[str, Any]:
    """Builds the JSON object (proto field names) the query parameters describe.

    `bound` lists dotted proto paths set by the path or the body; naming one of
    them (or anything inside one) is rejected, as is any name that does not exist.
    """
    bound_paths = tuple(bound)
    result: dict[str, Any] = {}
    seen: set[str] = set()
    for raw_name, value in items:
        match = _NAME.match(raw_name)
        if match is None:
            raise BindError(f"unknown query parameter {raw_name!r}", raw_name)
        dotted, key = match.group(1), match.group(2)
        fields = _resolve(desc, dotted, raw_name)
        path = ".".join(f.name for f in fields)
        for other in bound_paths:
            if (
                other == "*"
                or path == other
                or path.startswith(other + ".")
                or (other.startswith(path + "."))
            ):
                raise BindError(
                    f"query parameter {raw_name!r} sets a field bound by the path or body",
                    raw_name,
                )
        leaf = fields[-1]
        target = result
        for parent in fields[:-1]:
            child = target.setdefault(parent.name, {})
            target = child
        if key is not None:
            if not is_map(leaf):
                raise BindError(f"query parameter {raw_name!r}: {path!r} is not a map", raw_name)
            value_field = message_type(leaf).fields_by_name["value"]
            key_field = message_type(leaf).fields_by_name["key"]
            if value_field.type == FieldDescriptor.TYPE_MESSAGE and not _is_leaf_message(
                value_field
            ):
                raise BindError(f"map {path!r} has message values; send them in a body", raw_name)
            map_key = f"{path}[{key}]"
            if map_key in seen:
                raise BindError(f"query parameter {raw_name!r} is repeated", raw_name)
            seen.add(map_key)
            text_to_json(key_field, key)
            entries = target.setdefault(leaf.name, {})
            entries[key] = text_to_json(value_field, value)
            continue
        if is_map(leaf):
            raise BindError(
                f"query parameter {raw_name!r} is a map; use {raw_name}[key]=value", raw_name
            )
        if leaf.type == FieldDescriptor.TYPE_MESSAGE and not _is_leaf_message(leaf):
            raise BindError(
                f"query parameter {raw_name!r} is a message; set its fields as {raw_name}.<field>",
                raw_name,
            )
        converted = text_to_json(leaf, value)
        if is_repeated(leaf):
            target.setdefault(leaf.name, []).append(converted)
            continue
        if path in seen:
            raise BindError(
                f"query parameter {raw_name!r} is not repeated but given twice", raw_name
            )
        seen.add(path)
        target[leaf.name] = converted
    return result


def _resolve(desc: Descriptor, dotted: str, raw_name: str) -> list[FieldDescriptor]:
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = desc
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        field = find_field(current, part) if current is not None else None
        if field is None:
            raise BindError(f"unknown query parameter {raw_name!r}", raw_name)
        fields.append(field)
        last = i == len(parts) - 1
        if not last:
            if (
                is_repeated(field)
                or field.type != FieldDescriptor.TYPE_MESSAGE
                or (
                    message_name(field) in SCALAR_WKTS
                    or message_name(field).startswith("google.protobuf.")
                )
            ):
                raise BindError(
                    f"query parameter {raw_name!r}: {field.name!r} has no sub-fields "
                    "that can be set from a query",
                    raw_name,
                )
            current = field.message_type
    return fields

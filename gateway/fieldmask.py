"""PATCH without `update_mask`: the mask is the set of fields the JSON body names.

Nested plain messages contribute their own keys (`metadata` vs `config.retries`);
maps, repeated fields, Struct and other well-known types are replaced whole, so
their key is the path (as grpc-gateway does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.jsonmap import OPAQUE_WKTS, find_field, is_repeated, message_name, message_type


def paths_from_body(desc: Descriptor, body: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted proto field paths named by a JSON body, in body order."""
    paths: list[str] = []
    for key, value in body.items():
        field = find_field(desc, key)
        if field is None:
            continue  # the JSON mapping rejects it with a clear message
        path = f"{prefix}{field.name}"
        nested = (
            field.type == FieldDescriptor.TYPE_MESSAGE
            and not is_repeated(field)
            and message_name(field) not in OPAQUE_WKTS
            and isinstance(value, Mapping)
            and value
        )
        if nested:
            paths.extend(paths_from_body(message_type(field), value, path + "."))
        else:
            paths.append(path)
    return paths


def mask_field(desc: Descriptor) -> FieldDescriptor | None:
    """The request's `update_mask` FieldMask field, if it has one."""
    field = desc.fields_by_name.get("update_mask")
    if field is not None and message_name(field) == "google.protobuf.FieldMask":
        return field
    return None

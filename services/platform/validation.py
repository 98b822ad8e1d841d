"""Request validation with protovalidate: the `buf.validate` rules declared in
the contracts, turned into INVALID_ARGUMENT with `google.rpc.BadRequest` field
violations whose paths read like `document.labels["Team"]` or `names[3]`."""

from __future__ import annotations

import json
from typing import Any

import protovalidate
from google.protobuf.message import Message

from services.platform.errors import FieldViolation, InvalidArgument

_validator = protovalidate.Validator()


def violations(message: Message) -> list[FieldViolation]:
    """Every rule the message breaks, as field violations (empty when valid)."""
    return [_to_field_violation(v) for v in _validator.collect_violations(message)]


def validate(message: Message) -> None:
    """Raises InvalidArgument listing every violated rule."""
    found = violations(message)
    if found:
        summary = "; ".join(
            f"{v.field}: {v.description}" if v.field else v.description for v in found
        )
        raise InvalidArgument(f"invalid request: {summary}", found)


def _to_field_violation(violation: Any) -> FieldViolation:
    proto = violation.proto
    path = ""
    if proto.has_field("field"):
        path = _path(proto.field.elements)
    return FieldViolation(field=path, description=proto.message, reason=proto.rule_id)


def _path(elements: Any) -> str:
    parts: list[str] = []
    for element in elements:
        segment = element.field_name
        subscript = element.subscript
        if subscript is not None:
            if subscript.field == "index":
                segment += f"[{subscript.value}]"
            elif subscript.field == "string_key":
                segment += f"[{json.dumps(subscript.value)}]"
            else:
                segment += f"[{str(subscript.value).lower()}]"
        parts.append(segment)
    return ".".join(parts)

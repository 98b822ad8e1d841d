"""Assembles one request message from a route's path variables, query string,
JSON body and the conditional/idempotency headers.

Precedence and checks (AIP-127): the body is parsed as the rule's `body` says;
path variables are then written into it and must agree with a value the body
already carries; query parameters may only name fields bound by neither. On
PATCH with a body field and no `update_mask`, the mask is derived from the
body's keys. `If-Match` fills `etag`, `Idempotency-Key` fills `request_id`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.fieldmask import mask_field, paths_from_body
from gateway.jsonmap import BindError, find_field, parse_into, resolve_path, text_to_json
from gateway.query import bind_query
from gateway.routing import Route

# Headers that fill request fields (`_bind_headers`).
HEADER_BOUND = ("if-match", "idempotency-key")


def bind_request(
    route: Route,
    path_values: Mapping[str, str],
    query_items: Sequence[tuple[str, str]],
    body: Any,
    headers: Mapping[str, str],
    cursor: str | None = None,
) -> Message:
    """Builds the request; BindError (→ 400) for anything that does not map."""
    if (
        not route.body
        and not query_items
        and cursor is None
        and route.path_attributes is not None
        and not any(name in headers for name in HEADER_BOUND)
        and all(value.isascii() for value in path_values.values())
    ):
        return _bind_path_only(route, route.path_attributes, path_values)
    return bind_via_json(route, path_values, query_items, body, headers, cursor)


def bind_via_json(
    route: Route,
    path_values: Mapping[str, str],
    query_items: Sequence[tuple[str, str]],
    body: Any,
    headers: Mapping[str, str],
    cursor: str | None = None,
) -> Message:
    """The general mapping: every source into one JSON object, parsed by
    json_format. `bind_request` builds path-only requests directly, the same message."""
    desc = route.method.request_desc
    data: dict[str, Any] = {}
    bound: list[str] = list(route.path_fields())
    if route.body == "*":
        bound.append("*")
        if body is not None:
            if not isinstance(body, dict):
                raise BindError("request body must be a JSON object")
            data = copy.deepcopy(body)
    elif route.body:
        bound.append(route.body)
        if body is not None:
            data[route.body] = copy.deepcopy(body)
    _merge(data, bind_query(desc, query_items, bound))
    for dotted, text in path_values.items():
        _set_path_value(desc, data, dotted, text, must_agree=True)
    if cursor is not None:
        _set_path_value(desc, data, route.method.cursor_request_field, cursor, must_agree=False)
    _bind_headers(route, desc, data, headers)
    message = route.method.request_class()
    parse_into(data, message)
    _derive_update_mask(route, desc, data, body, message)
    return message


def _bind_path_only(
    route: Route, attributes: Sequence[tuple[str, tuple[str, ...]]], path_values: Mapping[str, str]
) -> Message:
    """A request set from string path variables alone (a Get or Delete by name):
    the same message the JSON mapping builds, without building its JSON first."""
    message = route.method.request_class()
    for dotted, names in attributes:
        target: Any = message
        for name in names[:-1]:
            target = getattr(target, name)
        setattr(target, names[-1], path_values[dotted])
    return message


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        existing = into.get(key)
        if isinstance(existing, dict) and isinstance(value, dict):
            _merge(existing, value)
        else:
            into[key] = value


def _lookup_key(obj: Mapping[str, Any], field: FieldDescriptor) -> str | None:
    for key in (field.name, field.json_name):
        if key in obj:
            return key
    return None


def _set_path_value(
    desc: Descriptor, data: dict[str, Any], dotted: str, text: str, must_agree: bool
) -> None:
    fields = resolve_path(desc, dotted)
    target = data
    for parent in fields[:-1]:
        key = _lookup_key(target, parent)
        if key is None:
            child: dict[str, Any] = {}
            target[parent.name] = child
            target = child
            continue
        value = target[key]
        if not isinstance(value, dict):
            raise BindError(f"field {parent.name!r} must be a JSON object", parent.name)
        target = value
    leaf = fields[-1]
    value = text_to_json(leaf, text)
    key = _lookup_key(target, leaf)
    if key is not None and must_agree:
        existing = target[key]
        if existing not in (value, text) and str(existing) != text:
            raise BindError(
                f"field {dotted!r} is {existing!r} in the body but {text!r} in the path", dotted
            )
        return
    if key is not None:
        del target[key]
    target[leaf.name] = value


def _header_target(
    route: Route, desc: Descriptor, data: dict[str, Any], name: str
) -> tuple[dict[str, Any], FieldDescriptor] | None:
    """Where a header-bound field (`etag`, `request_id`) lives: the request, else
    the body resource."""
    field = desc.fields_by_name.get(name)
    if field is not None and field.type == FieldDescriptor.TYPE_STRING:
        return data, field
    if route.body and route.body != "*":
        body_field = desc.fields_by_name[route.body]
        resource = body_field.message_type
        if resource is not None:
            inner = resource.fields_by_name.get(name)
            holder = data.get(route.body)
            if inner is not None and inner.type == FieldDescriptor.TYPE_STRING:
                if holder is None:
                    holder = data[route.body] = {}
                if isinstance(holder, dict):
                    return holder, inner
    return None


def _bind_headers(
    route: Route, desc: Descriptor, data: dict[str, Any], headers: Mapping[str, str]
) -> None:
    if_match = headers.get("if-match", "").strip()
    if if_match and if_match != "*":
        etag = if_match.removeprefix("W/").strip('"')
        _bind_header(route, desc, data, "etag", etag, "If-Match")
    idempotency_key = headers.get("idempotency-key", "").strip()
    if idempotency_key:
        _bind_header(route, desc, data, "request_id", idempotency_key, "Idempotency-Key")


def _bind_header(
    route: Route, desc: Descriptor, data: dict[str, Any], name: str, value: str, header: str
) -> None:
    target = _header_target(route, desc, data, name)
    if target is None:
        return
    holder, field = target
    key = _lookup_key(holder, field)
    if key is not None and holder[key] not in ("", value):
        raise BindError(f"{header} header disagrees with field {name!r}", name)
    holder[key or field.name] = value


def _derive_update_mask(
    route: Route, desc: Descriptor, data: Mapping[str, Any], body: Any, message: Message
) -> None:
    if route.http_method != "PATCH" or route.body in ("", "*"):
        return
    field = mask_field(desc)
    if field is None or _lookup_key(data, field) is not None or not isinstance(body, dict):
        return
    resource = find_field(desc, route.body)
    if resource is None or resource.message_type is None:
        return
    paths = paths_from_body(resource.message_type, body)
    getattr(message, field.name).paths.extend(paths)

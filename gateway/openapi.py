"""OpenAPI 3.1 document generated from the same routes the gateway serves.

Path templates become OpenAPI paths: literals stay, each `*` of a variable
becomes one path parameter (`{name=documents/*}` → `/documents/{name}`; the
parameter carries the id, the gateway rebuilds `documents/<id>`, or the whole
name URL-encoded as one segment, as a generated client sends the name a response
returned), custom verbs stay as `:verb`. Query parameters are the request's
fields bound by neither path nor body (maps as `deepObject`); a `body: "*"`
schema leaves out the fields the path binds. Schemas carry field behaviors and
protovalidate rules. Streams list both media types; errors share one AIP-193
schema; every operation uses bearer JWT auth.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.comments import Comments
from gateway.constraints import is_required
from gateway.jsonmap import SCALAR_WKTS, is_map, is_repeated, message_name, message_type
from gateway.patterns import Segment, SegmentKind, Variable
from gateway.routing import Route
from gateway.schema import Schema, SchemaBuilder, behaviors
from gateway.streaming import NDJSON, SSE

ERROR_SCHEMA = "protomesh.gateway.Error"
MAX_QUERY_DEPTH = 4


def error_schema() -> Schema:
    return {
        "type": "object",
        "description": "AIP-193 error: a google.rpc.Status with its HTTP status.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "status"],
                "properties": {
                    "code": {"type": "integer", "description": "HTTP status code."},
                    "message": {"type": "string"},
                    "status": {"type": "string", "description": "gRPC status code name."},
                    "details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"@type": {"type": "string"}},
                            "required": ["@type"],
                            "additionalProperties": True,
                        },
                    },
                },
            }
        },
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


_COMMON_PARAMETERS = {
    "RequestId": _header("X-Request-Id", "Request id, forwarded upstream; generated when absent."),
    "GrpcTimeout": _header(
        "Grpc-Timeout", "Deadline in gRPC format (`500m`, `2S`), capped by the method's default."
    ),
    "Traceparent": _header("traceparent", "W3C trace context, forwarded upstream."),
}


def build_openapi(
    routes: Sequence[Route], comments: Comments, title: str = "protomesh", version: str = "v1"
) -> dict[str, Any]:
    builder = SchemaBuilder(comments)
    paths: dict[str, dict[str, Any]] = {}
    services: dict[str, str] = {}
    shapes: dict[str, str] = {}
    for route in routes:
        services[route.method.service] = comments.get(route.method.service)
        path, parameters = _unified(*_path_of(route, builder), shapes)
        operation = _operation(route, comments, builder, parameters)
        paths.setdefault(path, {})[route.http_method.lower()] = operation
    _unique_titles(builder.definitions)
    components: dict[str, Any] = {
        "schemas": {**dict(sorted(builder.definitions.items())), ERROR_SCHEMA: error_schema()},
        "responses": {
            "Error": {
                "description": "Error in the AIP-193 shape.",
                "headers": {
                    "X-Request-Id": {"schema": {"type": "string"}},
                    "Retry-After": {
                        "description": "Seconds to wait (429/503 with RetryInfo).",
                        "schema": {"type": "string"},
                    },
                    "WWW-Authenticate": {
                        "description": "Bearer challenge (401).",
                        "schema": {"type": "string"},
                    },
                },
                "content": {"application/json": {"schema": _ref(ERROR_SCHEMA)}},
            }
        },
        "parameters": _COMMON_PARAMETERS,
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "HTTP/JSON transcoding of the protomesh gRPC services, generated "
            "from their google.api.http rules.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": name.rsplit(".", 1)[-1], "description": text or name}
            for name, text in services.items()
        ],
        "paths": paths,
        "components": components,
    }


def _unique_titles(definitions: dict[str, Schema]) -> None:
    """Messages of different packages with one short name (`Heartbeat` of documents,
    tasks and cost) get titles that tell them apart (`DocumentHeartbeat`): client
    generators name their classes by title and refuse duplicates."""
    by_title: dict[str, list[str]] = {}
    for name, schema in definitions.items():
        if "title" in schema:
            by_title.setdefault(schema["title"], []).append(name)
    for title, names in by_title.items():
        if len(names) < 2:
            continue
        for name in names:
            package = [
                part.capitalize()
                for part in name.split(".")[1:-1]
                if not re.fullmatch(r"v\d+(?:(?:alpha|beta)\d*)?", part)
            ]
            definitions[name]["title"] = "".join(package) + title


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _path_of(route: Route, builder: SchemaBuilder) -> tuple[str, list[dict[str, Any]]]:
    template = route.template
    owner: dict[int, Variable] = {}
    for variable in template.variables:
        for i in range(variable.start, variable.end):
            owner[i] = variable
    parts: list[str] = []
    parameters: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    request = route.method.request_desc
    for i, segment in enumerate(template.segments):
        if segment.kind is SegmentKind.LITERAL:
            parts.append(segment.literal)
            continue
        var = owner.get(i)
        base = var.dotted if var is not None else "path"
        counts[base] = counts.get(base, 0) + 1
        name = base if counts[base] == 1 else f"{base}_{counts[base]}"
        parts.append("{" + name + "}")
        schema: Schema = {"type": "string"}
        description = "Path segment."
        if var is not None:
            description = (
                f"Sets `{var.dotted}` (template `{template.source}`)."
                if segment.kind is SegmentKind.WILDCARD
                else f"Rest of `{var.dotted}`; may contain `/`."
            )
            example = _name_example(template.segments[var.start : var.end])
            if example is not None:
                encoded = example.replace("/", "%2F")
                description = (
                    f"The id in `{var.dotted}` (the `{{id}}` of `{example}`), or the whole "
                    f"name as responses return it, which the client sends URL-encoded as "
                    f"one segment (`{encoded}`)."
                )
            leaf = _leaf(request, var.dotted)
            text = builder.comments.get(leaf.full_name)
            if text:
                description = f"{text}\n\n{description}"
            if var.end - var.start == 1 and leaf.type != FieldDescriptor.TYPE_STRING:
                schema = builder.field(leaf)
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": schema,
            }
        )
    path = "/" + "/".join(parts) + (":" + template.verb if template.verb else "")
    return path, parameters


def _name_example(segments: Sequence[Segment]) -> str | None:
    """`documents/{id}` for a variable over `documents/*` (exactly one `*`, no `**`):
    the shape whose whole value the gateway also takes in the `*` segment."""
    wildcards = [s for s in segments if s.kind is not SegmentKind.LITERAL]
    if len(wildcards) != 1 or wildcards[0].kind is not SegmentKind.WILDCARD:
        return None
    return "/".join(s.literal if s.kind is SegmentKind.LITERAL else "{id}" for s in segments)


_PARAMETER = re.compile(r"\{([^}]*)\}")


def _unified(
    path: str, parameters: list[dict[str, Any]], shapes: dict[str, str]
) -> tuple[str, list[dict[str, Any]]]:
    """OpenAPI treats `/v1/budgets/{name}` and `/v1/budgets/{budget.name}` as the same
    path (and a document with both as invalid): a route whose path differs from an
    earlier one only in parameter names is filed under the earlier path, its path
    parameters renamed by position. The URLs are the same, so clients are unaffected;
    the descriptions still name the field each segment sets."""
    shape = _PARAMETER.sub("{}", path)
    known = shapes.setdefault(shape, path)
    if known == path:
        return path, parameters
    renames = dict(zip(_PARAMETER.findall(path), _PARAMETER.findall(known), strict=True))
    renamed = [
        {**p, "name": renames.get(p["name"], p["name"])} if p.get("in") == "path" else p
        for p in parameters
    ]
    return known, renamed


def _leaf(desc: Descriptor, dotted: str) -> FieldDescriptor:
    field: FieldDescriptor | None = None
    current: Descriptor | None = desc
    for part in dotted.split("."):
        assert current is not None
        field = current.fields_by_name[part]
        current = field.message_type
    assert field is not None
    return field


def _operation(
    route: Route, comments: Comments, builder: SchemaBuilder, parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    method = route.method
    full_name = f"{method.service}.{method.name}"
    description = comments.get(full_name)
    if method.scopes:
        scopes = " ".join(f"`{s}`" for s in method.scopes)
        description = f"{description}\n\nRequired scopes: {scopes}.".strip()
    headers: list[dict[str, Any]] = [
        {"$ref": "#/components/parameters/RequestId"},
        {"$ref": "#/components/parameters/GrpcTimeout"},
        {"$ref": "#/components/parameters/Traceparent"},
    ]
    request = method.request_desc
    if _has_string_field(request, "etag", route):
        headers.append(_header("If-Match", "Sets `etag`: the change applies only to this version."))
    if _has_string_field(request, "request_id", route):
        headers.append(_header("Idempotency-Key", "Sets `request_id`: replays are idempotent."))
    if method.server_streaming and method.cursor_request_field:
        headers.append(
            _header("Last-Event-ID", f"Resumes the stream: sets `{method.cursor_request_field}`.")
        )
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "tags": [method.service.rsplit(".", 1)[-1]],
        "summary": (description.split("\n\n", 1)[0].replace("\n", " ") or method.name)[:200],
        "description": description or method.name,
        "parameters": [*parameters, *_query_parameters(route, builder), *headers],
        "responses": {
            str(method.success_status): _success(route, builder),
            "default": {"$ref": "#/components/responses/Error"},
        },
        "x-grpc-method": method.grpc_path,
    }
    if method.scopes:
        operation["x-required-scopes"] = list(method.scopes)
    body = _request_body(route, builder)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _has_string_field(desc: Descriptor, name: str, route: Route) -> bool:
    field = desc.fields_by_name.get(name)
    if field is not None and field.type == FieldDescriptor.TYPE_STRING:
        return True
    if route.body and route.body != "*":
        body_type = desc.fields_by_name[route.body].message_type
        if body_type is not None:
            nested = body_type.fields_by_name.get(name)
            return nested is not None and nested.type == FieldDescriptor.TYPE_STRING
    return False


def _request_body(route: Route, builder: SchemaBuilder) -> dict[str, Any] | None:
    if not route.body:
        return None
    request = route.method.request_desc
    bound = route.path_fields()
    if route.body == "*" and bound:
        # Fields the path sets are not repeated in the body (as grpc-gateway does).
        suffix = f"_{route.binding_index}" if route.binding_index else ""
        name = f"{request.full_name}Body{suffix}"
        schema = builder.message_without(request, bound, name)
        required = bool(builder.definitions[name].get("required"))
    elif route.body == "*":
        schema = builder.message(request)
        required = bool(builder.definitions.get(request.full_name, {}).get("required"))
    else:
        field = request.fields_by_name[route.body]
        schema = builder.field(field)
        required = field_behavior_pb2.REQUIRED in behaviors(field) or is_required(field)
    if route.method.client_streaming:
        return {
            "required": True,
            "description": "NDJSON: one request message per line.",
            "content": {NDJSON: {"schema": schema}},
        }
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _success(route: Route, builder: SchemaBuilder) -> dict[str, Any]:
    method = route.method
    headers = {"X-Request-Id": {"schema": {"type": "string"}}}
    if method.returns_http_body:
        return {
            "description": "Raw content; the media type is the backend's.",
            "headers": headers,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    response = method.response_desc
    if route.response_body:
        schema = builder.field(response.fields_by_name[route.response_body])
    else:
        schema = builder.message(response)
    if method.server_streaming:
        cursor = method.cursor_response_field
        note = f" Each event's `id` is `{cursor}`." if cursor else ""
        return {
            "description": "A stream of messages: SSE (one `data:` event per message, "
            "`: heartbeat` comments, a final `event: error`) or NDJSON (one per line), "
            f"chosen by `Accept`.{note}",
            "headers": headers,
            "content": {SSE: {"schema": {"type": "string"}}, NDJSON: {"schema": schema}},
        }
    return {
        "description": "OK",
        "headers": headers,
        "content": {"application/json": {"schema": schema}},
    }


def _query_parameters(route: Route, builder: SchemaBuilder) -> list[dict[str, Any]]:
    if route.body == "*":
        return []
    excluded = set(route.path_fields())
    if route.body:
        excluded.add(route.body)
    out: list[dict[str, Any]] = []
    _walk(route.method.request_desc, ("", ""), excluded, builder, out, (), 0)
    return out


def _walk(
    desc: Descriptor,
    prefixes: tuple[str, str],
    excluded: set[str],
    builder: SchemaBuilder,
    out: list[dict[str, Any]],
    seen: tuple[str, ...],
    depth: int,
) -> None:
    prefix, json_prefix = prefixes
    for field in desc.fields:
        path = prefix + field.name
        inner = (path + ".", json_prefix + field.json_name + ".")
        if path in excluded:
            continue
        if any(e.startswith(path + ".") for e in excluded) and field.message_type is not None:
            if not is_repeated(field):
                _walk(message_type(field), inner, excluded, builder, out, seen, depth + 1)
            continue
        name = json_prefix + field.json_name
        text = builder.comments.get(f"{desc.full_name}.{field.name}")
        param: dict[str, Any] = {"name": name, "in": "query", "required": False}
        if text:
            param["description"] = text
        if is_map(field):
            value = message_type(field).fields_by_name["value"]
            if (
                value.type == FieldDescriptor.TYPE_MESSAGE
                and message_name(value) not in SCALAR_WKTS
            ):
                continue
            param.update(style="deepObject", explode=True, schema=builder.field(field))
            out.append(param)
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE and message_name(field) not in SCALAR_WKTS:
            if is_repeated(field) or depth >= MAX_QUERY_DEPTH:
                continue
            if message_name(field).startswith("google.") or message_name(field) in seen:
                continue
            _walk(
                message_type(field),
                inner,
                excluded,
                builder,
                out,
                (*seen, message_name(field)),
                depth + 1,
            )
            continue
        schema = builder.field(field)
        for key in ("readOnly", "writeOnly"):
            schema.pop(key, None)
        if is_repeated(field):
            param.update(style="form", explode=True)
        param["schema"] = schema
        if field_is_output_only(field):
            continue
        out.append(param)


def field_is_output_only(field: FieldDescriptor) -> bool:
    return field_behavior_pb2.OUTPUT_ONLY in behaviors(field)

"""The OpenAPI 3.1 document rewritten as OpenAPI 3.0.3, for tools that read only
3.0 — among them the Swagger UI the gateway serves at /docs (swagger-ui-bundle
ships Swagger UI 4, which renders `openapi: 3.0.n` only).

The API is the same; only the schema dialect changes: `exclusiveMinimum: n`
becomes `minimum: n, exclusiveMinimum: true` (likewise the maximum), `const`
becomes a one-value `enum`, `type: "null"` becomes `nullable`, and the keywords
3.0 has no place for (`propertyNames`, `contentEncoding`, `$schema`, `$defs`)
are dropped — they only narrow what a value may be.
"""

from __future__ import annotations

import copy
from typing import Any

VERSION = "3.0.3"
_DROPPED = frozenset({"propertyNames", "contentEncoding", "$schema", "$defs"})


def downgrade(document: dict[str, Any]) -> dict[str, Any]:
    """A 3.0.3 copy of a 3.1 document built by gateway/openapi.py."""
    out = copy.deepcopy(document)
    out["openapi"] = VERSION
    components = out.get("components", {})
    components["schemas"] = {
        name: _schema(schema) for name, schema in components.get("schemas", {}).items()
    }
    for path_item in out.get("paths", {}).values():
        for operation in path_item.values():
            _operation(operation)
    for response in components.get("responses", {}).values():
        _content(response)
    for parameter in components.get("parameters", {}).values():
        _parameter(parameter)
    return out


def _operation(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", ()):
        _parameter(parameter)
    if "requestBody" in operation:
        _content(operation["requestBody"])
    for response in operation.get("responses", {}).values():
        _content(response)
        for header in response.get("headers", {}).values():
            _parameter(header)


def _parameter(parameter: dict[str, Any]) -> None:
    if "schema" in parameter:
        parameter["schema"] = _schema(parameter["schema"])


def _content(holder: dict[str, Any]) -> None:
    for media in holder.get("content", {}).values():
        if "schema" in media:
            media["schema"] = _schema(media["schema"])


def _schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return {"$ref": schema["$ref"]}  # 3.0 ignores a $ref's siblings
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED:
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: _schema(inner) for name, inner in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_schema(inner) for inner in value]
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "type" and value == "null":
            out["nullable"] = True
        else:
            out[key] = value
    if out.get("nullable") and "type" not in out:
        out["enum"] = [None]
    return out

"""A2A's JSON-RPC 2.0 binding: the a2a-sdk's JSON-RPC dispatcher over the same
request handler as the HTTP+JSON binding (gateway/a2a.py), so both map tasks one
way. The gateway mounts it at `POST {gateway}/a2a/jsonrpc`.

Methods are A2A v1.0's (`SendMessage`, `SendStreamingMessage`, `GetTask`,
`ListTasks`, `CancelTask`, `SubscribeToTask`); the streaming two answer as SSE
whose events are JSON-RPC responses. Failures are JSON-RPC errors in a 200
response, as the binding has them (TaskNotFound -32001, TaskNotCancelable -32002,
invalid params -32602, and the gateway's -32040 to -32043 from
gateway/a2a_errors.py), except a call the services refused as unauthenticated:
that error comes with HTTP 401, so the `WWW-Authenticate` challenge reaches HTTP
clients as on the other binding."""

from __future__ import annotations

import json
from typing import Any

from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.routes.jsonrpc_routes import create_jsonrpc_routes
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.a2a_errors import JSON_RPC_CODES, Unauthenticated

UNAUTHENTICATED_CODE = JSON_RPC_CODES[Unauthenticated]


def jsonrpc_routes(handler: RequestHandler, path: str) -> list[BaseRoute]:
    """`POST path`: the JSON-RPC endpoint over `handler`."""
    (sdk_route,) = create_jsonrpc_routes(handler, path, enable_v0_3_compat=True)
    assert isinstance(sdk_route, Route)
    dispatch = sdk_route.endpoint

    async def endpoint(request: Request) -> Response:
        response: Response = await dispatch(request)
        if error_code(response) == UNAUTHENTICATED_CODE:
            response.status_code = 401
        return response

    return [Route(path, endpoint, methods=["POST"])]


def error_code(response: Response) -> int | None:
    """The JSON-RPC error code a non-streaming answer carries, if it is an error."""
    if not isinstance(response, JSONResponse):
        return None
    body: Any = json.loads(bytes(response.body))
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None

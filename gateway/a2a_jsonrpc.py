"""A2A's JSON-RPC 2.0 binding: the a2a-sdk's JSON-RPC dispatcher over the same
request handler as the HTTP+JSON binding (gateway/a2a.py), so both map tasks one
way. The gateway mounts it at `POST {gateway}/a2a/jsonrpc`.

Methods are A2A v1.0's (`SendMessage`, `SendStreamingMessage`, `GetTask`,
`ListTasks`, `CancelTask`, `SubscribeToTask`), and A2A 0.3's (`message/send`,
`tasks/get`, ...) for clients that send no `A2A-Version`; the streaming ones answer
as SSE whose events are JSON-RPC responses. Failures are JSON-RPC errors in a 200
response, as the binding has them (TaskNotFound -32001, TaskNotCancelable -32002,
invalid params -32602, and the gateway's -32040 to -32043 from
gateway/a2a_errors.py; over 0.3, -32603 for those), except a call the services
refused as unauthenticated: that error comes with HTTP 401, so the
`WWW-Authenticate` challenge reaches HTTP clients as on the other binding."""

from __future__ import annotations

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.routes.common import DefaultServerCallContextBuilder
from a2a.server.routes.jsonrpc_routes import create_jsonrpc_routes
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.a2a_errors import REQUEST_STATE


class ContextWithRequestState(DefaultServerCallContextBuilder):
    """The SDK's call context plus the request's state, where the handler notes an
    unauthenticated call (gateway/a2a_errors.py `call_error`)."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state[REQUEST_STATE] = request.state
        return context


def jsonrpc_routes(handler: RequestHandler, path: str) -> list[BaseRoute]:
    """`POST path`: the JSON-RPC endpoint over `handler`, for A2A 1.0 and 0.3."""
    (sdk_route,) = create_jsonrpc_routes(
        handler, path, context_builder=ContextWithRequestState(), enable_v0_3_compat=True
    )
    assert isinstance(sdk_route, Route)
    dispatch = sdk_route.endpoint

    async def endpoint(request: Request) -> Response:
        response: Response = await dispatch(request)
        if getattr(request.state, "unauthenticated", False):
            response.status_code = 401
        return response

    return [Route(path, endpoint, methods=["POST"])]

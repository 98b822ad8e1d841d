"""`/mcp` on the gateway: the MCP tools over the Streamable HTTP transport
(stateless, so any gateway worker can answer any request), behind a bearer-token
check that answers 401 with the standard `WWW-Authenticate` hint, and the OAuth
protected-resource metadata (RFC 9728) that hint points to.

The gateway does not verify tokens: the services do, on every call. A missing or
malformed `Authorization` header is refused here; a present but invalid token
reaches the services and comes back as an UNAUTHENTICATED tool error."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.backends import Backends
from gateway.comments import Comments
from gateway.mcp import McpTools, build_server, rpc_tools

MCP_PATH = "/mcp"
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"


def bearer_token(headers: Any) -> str:
    """The token of an `Authorization: Bearer <token>` header, or ""."""
    scheme, _, token = str(headers.get("authorization", "")).partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class McpEndpoint:
    """The ASGI app at `/mcp` plus its lifespan and the metadata route."""

    def __init__(self, backends: Backends, comments: Comments, pool: Any, issuer: str) -> None:
        tools = McpTools(
            backends, rpc_tools(sorted(backends.addresses), pool.FindServiceByName, comments)
        )
        server = build_server(
            tools, lambda ctx: bearer_token(ctx.request.headers) if ctx.request else ""
        )
        self.tools = tools
        self.issuer = issuer
        self.manager = StreamableHTTPSessionManager(app=server, stateless=True)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if not bearer_token(request.headers):
            metadata = str(request.base_url).rstrip("/") + RESOURCE_METADATA_PATH
            response = JSONResponse(
                {
                    "error": {
                        "code": 401,
                        "status": "UNAUTHENTICATED",
                        "message": "MCP calls need an `Authorization: Bearer <token>` header",
                    }
                },
                status_code=401,
                headers={
                    "WWW-Authenticate": f'Bearer resource_metadata="{metadata}", '
                    'error="invalid_request", error_description="bearer token required"'
                },
            )
            await response(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)

    async def resource_metadata(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "resource": base + MCP_PATH,
                "authorization_servers": [self.issuer] if self.issuer else [],
                "bearer_methods_supported": ["header"],
                "resource_name": "protomesh MCP",
            }
        )

    def routes(self) -> list[Route]:
        return [
            Route(MCP_PATH, self, methods=["GET", "POST", "DELETE"]),
            Route(RESOURCE_METADATA_PATH, self.resource_metadata, methods=["GET"]),
        ]

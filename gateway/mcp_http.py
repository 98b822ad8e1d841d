"""`/mcp` on the gateway: the MCP tools over the Streamable HTTP transport
(stateless, so any gateway worker can answer any request; bodies up to the
gateway's limit), behind a bearer-token check that answers 401 with the standard
`WWW-Authenticate` hint, and the OAuth protected-resource metadata (RFC 9728)
that hint points to, which names the token issuer as the authorization server
when the issuer is a URL.

The gateway does not verify tokens: the services do, on every call. A missing or
malformed `Authorization` header is refused here; a present but invalid token
reaches the services and comes back as an UNAUTHENTICATED tool error."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway import errors
from gateway.agent_limits import DEFAULT_MAX_BODY_BYTES, BoundedBody
from gateway.backends import Backends
from gateway.comments import Comments
from gateway.mcp import McpTools, build_server, rpc_tools
from gateway.responses import send_error
from services.platform.auth import parse_bearer

MCP_PATH = "/mcp"
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"


def resource_metadata(resource: str, issuer: str) -> dict[str, Any]:
    """The protected-resource metadata (RFC 9728) for `resource`. Its
    `authorization_servers` are issuer identifiers, which are URLs (RFC 8414):
    the token issuer is named when it is one (an identity provider's issuer, set
    as PROTOMESH_JWT_ISSUER) and left out otherwise (the dev issuer
    `protomesh-dev`, whose tokens `protomesh token` mints: no server issues them)."""
    metadata: dict[str, Any] = {"resource": resource}
    if is_issuer_url(issuer):
        metadata["authorization_servers"] = [issuer]
    metadata.update(bearer_methods_supported=["header"], resource_name="protomesh MCP")
    return metadata


def is_issuer_url(issuer: str) -> bool:
    """Whether `issuer` is an absolute http(s) URL without query or fragment."""
    parts = urlsplit(issuer)
    return (
        parts.scheme in ("https", "http")
        and bool(parts.hostname)
        and not parts.query
        and not parts.fragment
    )


def bearer_token(headers: Any) -> str:
    """The bearer token of a request's headers, or ""."""
    return parse_bearer(headers.get("authorization"))


class McpEndpoint:
    """The ASGI app at `/mcp` plus its lifespan and the metadata route."""

    def __init__(
        self,
        backends: Backends,
        comments: Comments,
        pool: Any,
        issuer: str,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        tools = McpTools(
            backends, rpc_tools(sorted(backends.addresses), pool.FindServiceByName, comments)
        )
        server = build_server(
            tools, lambda ctx: bearer_token(ctx.request.headers) if ctx.request else ""
        )
        self.tools = tools
        self.issuer = issuer
        self.manager = StreamableHTTPSessionManager(app=server, stateless=True)
        self.bounded = BoundedBody(self.manager.handle_request, max_body_bytes)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if not bearer_token(request.headers):
            metadata = str(request.base_url).rstrip("/") + RESOURCE_METADATA_PATH
            refusal = errors.unauthenticated(
                "MCP calls need an `Authorization: Bearer <token>` header",
                f'Bearer resource_metadata="{metadata}", '
                'error="invalid_request", error_description="bearer token required"',
            )
            await send_error(send, refusal, [])
            return
        await self.bounded(scope, receive, send)

    async def resource_metadata(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(resource_metadata(base + MCP_PATH, self.issuer))

    def routes(self) -> list[Route]:
        return [
            Route(MCP_PATH, self, methods=["GET", "POST", "DELETE"]),
            Route(RESOURCE_METADATA_PATH, self.resource_metadata, methods=["GET"]),
        ]

"""The gateway's side of TLS: what uvicorn serves HTTPS with, and the rule that
a token never travels over plain HTTP where TLS is required.

TLS is required when the gateway serves TLS itself (`PROTOMESH_TLS_CERT`) or
`PROTOMESH_GATEWAY_REQUIRE_TLS` says so (TLS ends at a proxy in front). Then a
request that carries `Authorization` is refused with 403 `TLS_REQUIRED` unless
its scheme is https: the connection itself was TLS, or a proxy listed in
`PROTOMESH_GATEWAY_FORWARDED_ALLOW_IPS` says `X-Forwarded-Proto: https` (uvicorn
believes that header from those addresses only). A proxy that reports `http`
took the token in plaintext from the caller, so the request is refused even on
a TLS connection. Requests without credentials (`/healthz`, `/openapi.json`, the
agent card) are unaffected.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import tls_required
from gateway.responses import send_error


class RefuseTokensOverPlaintext:
    """ASGI middleware: answers 403 `TLS_REQUIRED` to a request with credentials
    whose scheme is not https, before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("scheme") != "https"
            and any(name == b"authorization" for name, _ in scope.get("headers", ()))
        ):
            await send_error(send, tls_required(), [])
            return
        await self.app(scope, receive, send)

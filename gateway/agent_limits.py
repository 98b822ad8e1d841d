"""The request-body limit for the agent endpoints (`/mcp`, `/a2a`).

The MCP and A2A SDKs read a request body whole, with no limit of their own; the
gateway's transcoded routes refuse bodies past `max_body_bytes` with 413, and
`BoundedBody` does the same in front of the SDKs: it reads the body (refusing a
declared or actual size past the limit as soon as it shows) and hands the SDK
the bytes it read."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from gateway.body import ClientDisconnected, read_body
from gateway.errors import GatewayError, bad_request
from gateway.jsonmap import BindError
from gateway.responses import send_error

# The settings tree's default for PROTOMESH_GATEWAY_MAX_BODY_BYTES.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


class BoundedBody:
    """ASGI wrapper: 413 for a body larger than `max_bytes`, else `app` as usual."""

    def __init__(self, app: Any, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(receive, Headers(scope=scope), self.max_bytes)
        except GatewayError as error:
            await send_error(send, error, [])
            return
        except BindError as exc:  # a Content-Length that is not a number
            await send_error(send, bad_request(str(exc)), [])
            return
        except ClientDisconnected:
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # what comes after the body: the disconnect
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

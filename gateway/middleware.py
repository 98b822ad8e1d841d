"""The gateway's own ASGI layers, cheap on the common path: CORS, gzip, and the
hand-off of transcoded requests past Starlette's router.

Starlette's `CORSMiddleware` and `GZipMiddleware` decide what to do per request
by building `Headers` objects, a gzip responder and a normalized list of content
types — about 40 µs a request, a sixth of what the gateway adds to a small call
(docs/benchmarks.md, gateway profile). These wrappers answer the common cases
directly with exactly Starlette's result and hand everything else to the Starlette
middleware they wrap, so the behaviour is Starlette's:

- `Cors`: a request without `Origin` only gets `Vary: Origin` on its response;
  requests with an `Origin` (simple and preflight) go to `CORSMiddleware`.
- `Compression`: a response whose first body message is complete and smaller than
  the minimum goes out untouched; anything else (large, streamed, other message
  kinds) is replayed through Starlette's gzip (or identity) responder.
- `TranscodeUnrouted`: a request no Starlette route can match (its path starts with
  none of their literal prefixes) goes straight to the transcoder, which is where
  Starlette's exception middleware and router would end up (the router's default).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware, GZipResponder, IdentityResponder
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ORIGIN = b"origin"
_VARY = b"vary"
_ACCEPT_ENCODING = b"accept-encoding"


class Cors:
    """`CORSMiddleware` with a fast path for requests without Origin."""

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Sequence[str],
        allow_methods: Sequence[str],
        allow_headers: Sequence[str],
        expose_headers: Sequence[str],
        max_age: int,
    ) -> None:
        self.app = app
        self.starlette = CORSMiddleware(
            app,
            allow_origins=allow_origins,
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            expose_headers=expose_headers,
            max_age=max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == _ORIGIN for name, _ in scope["headers"]):
            await self.starlette(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = vary_origin(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_with_vary)


def vary_origin(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with `Vary: Origin` merged in as Starlette's CORS does for a
    request without Origin: every Vary value joined into the first Vary header's
    place (or a new header at the end), with `Origin` last."""
    out: list[tuple[bytes, bytes]] = []
    values: list[bytes] = []
    place = -1
    for name, value in headers:
        if name == _VARY:
            if place < 0:
                place = len(out)
                out.append((_VARY, b""))
            values.append(value)
        else:
            out.append((name, value))
    merged = b", ".join([*values, b"Origin"])
    if place < 0:
        out.append((_VARY, merged))
    else:
        out[place] = (_VARY, merged)
    return out


class Compression:
    """`GZipMiddleware(app, minimum_size, exclude_content_types=...)` that passes a
    complete small response through without building a responder."""

    def __init__(
        self, app: ASGIApp, minimum_size: int, exclude_content_types: tuple[str, ...]
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.starlette = GZipMiddleware(
            app, minimum_size=minimum_size, exclude_content_types=exclude_content_types
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.starlette(scope, receive, send)
            return
        start: Message | None = None
        responder: IdentityResponder | None = None

        async def send_maybe_compressed(message: Message) -> None:
            nonlocal start, responder
            if responder is not None:
                await responder.send_with_compression(message)
                return
            if start is None and message["type"] == "http.response.start":
                start = message  # held until the first body says how to send it
                return
            if (
                start is not None
                and message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and len(message.get("body", b"")) < self.minimum_size
            ):
                await send(start)
                await send(message)
                start = None
                return
            responder = self._responder(scope, send)
            if start is not None:
                await responder.send_with_compression(start)
            await responder.send_with_compression(message)

        await self.app(scope, receive, send_maybe_compressed)

    def _responder(self, scope: Scope, send: Send) -> IdentityResponder:
        """Starlette's responder for this request, sending to `send`."""
        accepts = next((v for n, v in scope["headers"] if n == _ACCEPT_ENCODING), b"")
        gzip = self.starlette
        responder = (
            GZipResponder(
                self.app,
                self.minimum_size,
                compresslevel=gzip.compresslevel,
                thread_minimum_size=gzip.thread_minimum_size,
                exclude_content_types=gzip.exclude_content_types,
            )
            if b"gzip" in accepts
            else IdentityResponder(
                self.app, self.minimum_size, exclude_content_types=gzip.exclude_content_types
            )
        )
        responder.send = send
        return responder


class TranscodeUnrouted:
    """Innermost user middleware: requests for the transcoder skip Starlette's
    exception middleware and the scan of its routes (about 15 µs a request)."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], transcoder: ASGIApp) -> None:
        self.app = app
        self.transcoder = transcoder
        self.prefixes = tuple(literal_prefix(route) for route in routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and not scope.get("root_path")
            and not scope["path"].startswith(self.prefixes)
        ):
            await self.transcoder(scope, receive, send)
            return
        await self.app(scope, receive, send)


def literal_prefix(route: BaseRoute) -> str:
    """What every path the route matches starts with — also with a slash added or
    removed, as the router's redirect tries ("" when unknown: every path)."""
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return ""
    return path.split("{", 1)[0].rstrip("/")

"""The gateway's CORS and gzip layers send exactly what Starlette's middleware sends
(every response shape, with and without Origin and gzip), and requests no route
can match reach the transcoder directly while routed ones, their slash redirects
included, still go through Starlette's router."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.middleware import Compression, Cors, TranscodeUnrouted, literal_prefix, vary_origin

CORS = {
    "allow_origins": ["https://app.example"],
    "allow_methods": ["GET", "POST"],
    "allow_headers": ["authorization"],
    "expose_headers": ["x-request-id", "etag"],
    "max_age": 600,
}
MINIMUM = 64
EXCLUDED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/x-ndjson")
Headers = list[tuple[bytes, bytes]]


def responder(
    bodies: Sequence[bytes], content_type: bytes, status: int = 200, extra: Headers = ()
) -> ASGIApp:
    """An app answering with these body messages (all but the last with more_body)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", content_type), *extra]
        if len(bodies) == 1:
            headers.append((b"content-length", str(len(bodies[0])).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for index, body in enumerate(bodies):
            more = index < len(bodies) - 1
            await send({"type": "http.response.body", "body": body, "more_body": more})

    return app


RESPONSES = {
    "small json": responder([b'{"a":1}'], b"application/json"),
    "large json": responder([b'{"a":"' + b"x" * 500 + b'"}'], b"application/json"),
    "streamed": responder([b"y" * 100, b"z" * 100, b""], b"application/octet-stream"),
    "ndjson stream": responder([b'{"a":1}\n' * 20, b""], b"application/x-ndjson"),
    "event stream": responder([b"data: x\n\n" * 20, b""], b"text/event-stream"),
    "with vary": responder(
        [b"v" * 200], b"text/plain", extra=[(b"vary", b"Accept"), (b"vary", b"Cookie")]
    ),
    "encoded": responder([b"e" * 200], b"text/plain", extra=[(b"content-encoding", b"br")]),
    "partial": responder([b"p" * 200], b"text/plain", status=206),
    "empty": responder([b""], b"application/json"),
}
REQUESTS = {
    "plain": [],
    "gzip": [(b"accept-encoding", b"gzip, deflate")],
    "origin": [(b"origin", b"https://app.example")],
    "other origin + gzip": [(b"origin", b"https://evil.example"), (b"accept-encoding", b"gzip")],
    "preflight": [
        (b"origin", b"https://app.example"),
        (b"access-control-request-method", b"POST"),
    ],
}


def run(app: ASGIApp, headers: Headers, method: str = "GET", path: str = "/x") -> list[Message]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 80),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


@pytest.mark.parametrize("response", RESPONSES)
@pytest.mark.parametrize("request_kind", REQUESTS)
def test_layers_send_what_starlette_sends(response: str, request_kind: str) -> None:
    inner = RESPONSES[response]
    ours = Cors(Compression(inner, MINIMUM, EXCLUDED), **CORS)
    theirs = CORSMiddleware(
        GZipMiddleware(inner, minimum_size=MINIMUM, exclude_content_types=EXCLUDED), **CORS
    )
    method = "OPTIONS" if request_kind == "preflight" else "GET"
    headers = REQUESTS[request_kind]
    assert run(ours, headers, method) == run(theirs, headers, method)


def test_vary_origin_joins_every_vary_header_in_the_first_place() -> None:
    headers = [(b"a", b"1"), (b"vary", b"Accept"), (b"b", b"2"), (b"vary", b"Cookie")]
    assert vary_origin(headers) == [
        (b"a", b"1"),
        (b"vary", b"Accept, Cookie, Origin"),
        (b"b", b"2"),
    ]
    assert vary_origin([]) == [(b"vary", b"Origin")]


def routed_app() -> tuple[Starlette, list[str]]:
    reached: list[str] = []

    async def transcoder(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])
        await PlainTextResponse("transcoded")(scope, receive, send)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [Route("/healthz", health), Mount("/a2a", app=PlainTextResponse("a2a"))]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TranscodeUnrouted, routes=routes, transcoder=transcoder)],
    )
    app.router.default = transcoder
    return app, reached


def answer(app: ASGIApp, path: str) -> tuple[int, bytes]:
    sent = run(app, [(b"host", b"gateway")], path=path)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_unrouted_paths_reach_the_transcoder_and_routed_ones_their_route() -> None:
    app, reached = routed_app()
    assert answer(app, "/v1/things/a") == (200, b"transcoded")
    assert answer(app, "/healthz") == (200, b"ok")
    assert answer(app, "/a2a/x") == (200, b"a2a")
    assert answer(app, "/healthz/")[0] == 307  # Starlette's slash redirect, as before
    assert answer(app, "/healthzz") == (200, b"transcoded")  # the router's default
    assert reached == ["/v1/things/a", "/healthzz"]


def test_literal_prefix_is_the_path_before_any_parameter() -> None:
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("")

    assert literal_prefix(Route("/v1/{x}/y", endpoint)) == "/v1"
    assert literal_prefix(Route("/healthz", endpoint)) == "/healthz"
    assert literal_prefix(Mount("/", app=endpoint)) == ""

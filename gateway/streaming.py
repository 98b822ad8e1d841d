"""Server streams out as SSE or NDJSON, raw `google.api.HttpBody` streams, and
the disconnect watch that cancels the upstream call.

SSE: one `data:` event per message, `id:` = the message's cursor when the RPC
declares `stream_cursor`, `: heartbeat` comments while the stream is idle, and a
final `event: error` in the AIP-193 shape if the call fails mid-stream. NDJSON:
one JSON object per line and a final `{"error": {...}}` line on failure.

Before answering 200 the gateway waits a moment for the first message, so a call
that fails at once (NOT_FOUND, PERMISSION_DENIED, ...) gets its real HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.types import Receive, Send

from gateway.errors import GatewayError, from_rpc_error
from gateway.jsonmap import dumps
from gateway.printer import JsonPrinter
from gateway.responses import HeaderList, send_body, send_error, send_start
from gateway.routing import Route

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


class StreamFormat(Enum):
    SSE = SSE
    NDJSON = NDJSON


class StreamAborted(Exception):
    """A raw stream failed after its headers were sent; the connection is dropped
    so the client sees a truncated body rather than a silently short one."""


@dataclass(frozen=True)
class StreamOptions:
    heartbeat_seconds: float = 15.0
    first_message_seconds: float = 0.25
    emit_unpopulated: bool = True
    # How messages become JSON (with `emit_unpopulated`), for streams and unary replies.
    printer: JsonPrinter = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "printer", JsonPrinter(self.emit_unpopulated))


def negotiate(headers: dict[str, str]) -> StreamFormat:
    accept = headers.get("accept", "")
    return StreamFormat.SSE if SSE in accept else StreamFormat.NDJSON


def cursor_of(message: Message, dotted: str) -> str | None:
    """The message's resume cursor (None when unset: heartbeats, snapshots)."""
    if not dotted:
        return None
    current: Any = message
    for part in dotted.split("."):
        field = current.DESCRIPTOR.fields_by_name.get(part)
        if field is None:
            return None
        if field.has_presence and not current.HasField(part):
            return None
        current = getattr(current, part)
    if isinstance(current, Message) or current in (0, "", b""):
        return None
    text = str(current)
    return text.replace("\r", "").replace("\n", "")


async def wait_disconnect(receive: Receive) -> None:
    """Returns when the client disconnects (call only once the body is read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def encode_message(
    route: Route, message: Message, fmt: StreamFormat, options: StreamOptions
) -> bytes:
    payload = options.printer.to_json(message)
    if route.response_body:
        payload = payload.get(route.response_body_json_name) if isinstance(payload, dict) else None
    data = dumps(payload)
    if fmt is StreamFormat.NDJSON:
        return data + b"\n"
    cursor = cursor_of(message, route.method.cursor_response_field)
    prefix = f"id: {cursor}\n".encode() if cursor is not None else b""
    return prefix + b"data: " + data + b"\n\n"


def encode_error(error: GatewayError, fmt: StreamFormat) -> bytes:
    data = dumps(error.body())
    if fmt is StreamFormat.NDJSON:
        return data + b"\n"
    return b"event: error\ndata: " + data + b"\n\n"


def _call_error(exc: BaseException) -> GatewayError:
    """The error a failed read stands for; a read cancelled with the call (by the
    gateway itself) has no status of its own."""
    if isinstance(exc, grpc.RpcError):
        return from_rpc_error(exc)
    return GatewayError(499, "CANCELLED", "the call was cancelled")


@contextlib.asynccontextmanager
async def _headers_of(call: Any) -> AsyncIterator[asyncio.Future[Any]]:
    """A future of the call's response headers, cancelled if still waiting at exit."""
    headers: asyncio.Future[Any] = asyncio.ensure_future(call.initial_metadata())
    try:
        yield headers
    finally:
        if not headers.done():
            headers.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
                await headers


async def response_headers(call: Any, wait_seconds: float) -> Any | None:
    """The call's response headers once they arrive (empty when the call ended
    without any: a refusal), or None after `wait_seconds` (a server that sends
    headers only with its first message)."""
    async with _headers_of(call) as headers:
        done, _ = await asyncio.wait({headers}, timeout=wait_seconds)
        if not done:
            return None
        try:
            return headers.result()
        except grpc.RpcError:
            return ()


async def _admitted(
    call: Any, read: asyncio.Future[Any], disconnected: asyncio.Future[Any], wait_seconds: float
) -> set[asyncio.Future[Any]]:
    """Waits until the stream is known to be accepted before the HTTP status is sent:
    its first message, or its response headers (protomesh services send them as soon
    as a stream passes authentication and validation) while the call is still open.
    A refusal then arrives in time to be the HTTP status. After `wait_seconds`
    without either (a server that sends headers only with its first message), the
    stream is taken as accepted."""
    async with _headers_of(call) as headers:
        done, _ = await asyncio.wait(
            {read, headers, disconnected},
            timeout=wait_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if headers in done and read not in done and call.done():
            # Headers that came with the status (a refusal): let the read report it.
            done = await _next(read, disconnected, None)
        return {f for f in done if f is not headers}


async def _next(
    read: asyncio.Future[Any], disconnected: asyncio.Future[Any], wait_seconds: float | None
) -> set[asyncio.Future[Any]]:
    done, _ = await asyncio.wait(
        {read, disconnected}, timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED
    )
    return done


async def relay_stream(
    call: Any,
    route: Route,
    fmt: StreamFormat,
    send: Send,
    disconnected: asyncio.Future[Any],
    headers: HeaderList,
    options: StreamOptions,
    failure: Callable[[], GatewayError | None] = lambda: None,
) -> int:
    """Relays a server stream to the client; returns the HTTP status to record
    (499 when the client went away). `failure` may name the real cause when the
    call was cancelled by the gateway itself (a bad line of a bidi body)."""
    raw = route.method.returns_http_body
    read: asyncio.Future[Any] = asyncio.ensure_future(call.read())
    try:
        if raw:
            done = await _next(read, disconnected, None)
        else:
            done = await _admitted(call, read, disconnected, options.first_message_seconds)
        if disconnected in done and not read.done():
            return 499
        if read.done():
            try:
                read.result()
            except (grpc.RpcError, asyncio.CancelledError) as exc:
                error = failure() or _call_error(exc)
                await send_error(send, error, headers)
                return error.http_status
        if raw:
            first = read.result()
            content_type = "application/octet-stream"
            if first is not grpc.aio.EOF and first.content_type:
                content_type = first.content_type
            await send_start(send, route.method.success_status, content_type, headers)
        else:
            stream_headers = [
                *headers,
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ]
            await send_start(send, route.method.success_status, fmt.value, stream_headers)
        while True:
            if not read.done():
                done = await _next(read, disconnected, options.heartbeat_seconds)
                if disconnected in done:
                    return 499
                if not done:
                    if fmt is StreamFormat.SSE and not raw:
                        await send_body(send, b": heartbeat\n\n", more=True)
                    continue
            try:
                message = read.result()
            except (grpc.RpcError, asyncio.CancelledError) as exc:
                if raw:
                    raise StreamAborted(str(exc)) from None
                error = failure() or _call_error(exc)
                await send_body(send, encode_error(error, fmt), more=True)
                break
            if message is grpc.aio.EOF:
                break
            if raw:
                await send_body(send, bytes(message.data), more=True)
            else:
                await send_body(send, encode_message(route, message, fmt, options), more=True)
            read = asyncio.ensure_future(call.read())
        await send_body(send, b"")
        return route.method.success_status
    finally:
        if not read.done():
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
                await read
        call.cancel()

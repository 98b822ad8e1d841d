"""The ASGI app that turns one HTTP request into one gRPC call (of any of the
four streaming kinds) and the reply back into HTTP.

It owns the request's life: route match, body reading, binding, headers →
metadata/deadline, the call, the response, the metric. A client that goes away
cancels the upstream call at once (a task watches `receive` for the disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.types import Receive, Scope, Send

from gateway import body as bodies
from gateway.backends import Backends
from gateway.binding import bind_request
from gateway.credentials import CredentialCheck
from gateway.errors import GatewayError, bad_request, from_rpc_error, internal
from gateway.headers import REQUEST_ID, metadata_from, request_id_of, timeout_from
from gateway.jsonmap import BindError, dumps, loads
from gateway.metrics import UNMATCHED, GatewayMetrics
from gateway.query import parse_query_string
from gateway.responses import JSON, HeaderList, send_complete, send_error
from gateway.routing import Route, Router
from gateway.streaming import (
    StreamAborted,
    StreamOptions,
    negotiate,
    relay_stream,
    response_headers,
    wait_disconnect,
)

log = logging.getLogger("gateway")


class _Request:
    """What every stage needs to know about the HTTP request in flight."""

    def __init__(self, scope: Scope) -> None:
        self.method: str = scope["method"]
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        self.path = raw.split(b"?", 1)[0].decode("latin-1")
        self.query = scope.get("query_string", b"").decode("latin-1")
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        self.headers = headers
        self.request_id = request_id_of(headers)
        self.response_headers: HeaderList = [(REQUEST_ID.encode(), self.request_id.encode())]


class Transcoder:
    def __init__(
        self,
        router: Router,
        backends: Backends,
        metrics: GatewayMetrics,
        max_body_bytes: int,
        max_line_bytes: int,
        stream_options: StreamOptions,
        credentials: CredentialCheck | None = None,
    ) -> None:
        self.router = router
        self.credentials = credentials
        self.backends = backends
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_line_bytes = max_line_bytes
        self.stream_options = stream_options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request = _Request(scope)
        label = UNMATCHED
        status = 500
        route: Route | None = None
        try:
            route, path_values = self.router.match(request.method, request.path)
            label = route.template.source
            status = await self._serve(route, path_values, request, receive, send)
        except bodies.ClientDisconnected:
            status = 499
        except StreamAborted:
            raise
        except GatewayError as exc:
            status = await self._fail(send, request, await self._first_problem(route, request, exc))
        except BindError as exc:
            error = bad_request(str(exc), exc.field)
            status = await self._fail(
                send, request, await self._first_problem(route, request, error)
            )
        except Exception:
            log.exception("gateway failure on %s %s", request.method, request.path)
            status = await self._fail(send, request, internal())
        self.metrics.observe(label, request.method, status, time.perf_counter() - started)

    async def _first_problem(
        self, route: Route | None, request: _Request, error: GatewayError
    ) -> GatewayError:
        """The gateway's own refusal of a routed request, or the 401 its credentials
        would get first (gateway/credentials.py)."""
        if self.credentials is None or route is None:
            return error
        needs_token = bool(route.method.scopes)
        return await self.credentials.first_problem(needs_token, request.headers, error)

    async def _fail(self, send: Send, request: _Request, error: GatewayError) -> int:
        with contextlib.suppress(RuntimeError, OSError):
            await send_error(send, error, request.response_headers)
        return error.http_status

    async def _serve(
        self,
        route: Route,
        path_values: dict[str, str],
        request: _Request,
        receive: Receive,
        send: Send,
    ) -> int:
        method = route.method
        query = parse_query_string(request.query)
        metadata = metadata_from(request.headers, request.request_id)
        timeout = timeout_from(request.headers, method.default_deadline)
        if method.client_streaming:
            bodies.check_ndjson_content_type(request.headers)
            if method.server_streaming:
                return await self._bidi(
                    route, path_values, query, request, receive, send, metadata, timeout
                )
            return await self._client_stream(
                route, path_values, query, request, receive, send, metadata, timeout
            )
        payload: Any = None
        if route.body:
            raw = await bodies.read_body(receive, request.headers, self.max_body_bytes)
            payload = bodies.json_payload(request.headers, raw)
        cursor = None
        if method.server_streaming and method.cursor_request_field:
            cursor = request.headers.get("last-event-id") or None
        message = bind_request(route, path_values, query, payload, request.headers, cursor)
        stub = self.backends.stub(method)
        disconnected = asyncio.ensure_future(wait_disconnect(receive))
        try:
            if method.server_streaming:
                call = stub(message, metadata=metadata, timeout=timeout)
                return await relay_stream(
                    call,
                    route,
                    negotiate(request.headers),
                    send,
                    disconnected,
                    request.response_headers,
                    self.stream_options,
                )
            call = stub(message, metadata=metadata, timeout=timeout)
            return await self._unary_reply(route, call, request, send, disconnected)
        finally:
            disconnected.cancel()

    async def _unary_reply(
        self,
        route: Route,
        call: Any,
        request: _Request,
        send: Send,
        disconnected: asyncio.Future[Any],
    ) -> int:
        # grpc.aio runs the call in a task of its own: await it here, and let a client
        # that goes away cancel it (no second task, no asyncio.wait per request).
        def cancel_call(_: asyncio.Future[Any]) -> None:
            call.cancel()

        disconnected.add_done_callback(cancel_call)
        try:
            response = await call
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if disconnected.done() and not (current and current.cancelling()):
                return 499
            raise
        except grpc.RpcError as exc:
            error = from_rpc_error(exc)
            await send_error(send, error, request.response_headers)
            return error.http_status
        finally:
            disconnected.remove_done_callback(cancel_call)
        headers = list(request.response_headers)
        with contextlib.suppress(grpc.RpcError, AttributeError):
            for key, value in await call.initial_metadata() or ():
                if isinstance(value, str) and value.isascii() and not key.startswith("grpc-"):
                    headers.append((f"grpc-metadata-{key}".encode(), value.encode()))
        await self._send_message(route, response, headers, send)
        return route.method.success_status

    async def _send_message(
        self, route: Route, response: Message, headers: HeaderList, send: Send
    ) -> None:
        status = route.method.success_status
        fields: Any = response  # generated classes: attributes are known only at run time
        if route.method.returns_http_body:
            content_type = fields.content_type or "application/octet-stream"
            await send_complete(send, status, content_type, bytes(fields.data), headers)
            return
        if route.method.response_has_etag and fields.etag:
            headers = [*headers, (b"etag", f'"{fields.etag}"'.encode())]
        payload = self.stream_options.printer.to_json(response)
        if route.response_body:
            payload = payload.get(route.response_body_json_name)
        await send_complete(send, status, JSON, dumps(payload), headers)

    async def _pump_lines(
        self,
        route: Route,
        path_values: dict[str, str],
        query: list[tuple[str, str]],
        request: _Request,
        receive: Receive,
        call: Any,
    ) -> None:
        """Writes each NDJSON line upstream as it arrives (backpressure: `write`
        waits for flow control), then half-closes the call."""
        async for number, line in bodies.iter_lines(receive, self.max_line_bytes):
            try:
                message = bind_request(route, path_values, query, loads(line), request.headers)
            except BindError as exc:
                raise BindError(f"line {number}: {exc}", exc.field) from None
            await call.write(message)
        await call.done_writing()

    async def _client_stream(
        self,
        route: Route,
        path_values: dict[str, str],
        query: list[tuple[str, str]],
        request: _Request,
        receive: Receive,
        send: Send,
        metadata: Any,
        deadline: float | None,
    ) -> int:
        call = self.backends.stub(route.method)(metadata=metadata, timeout=deadline)
        try:
            # Writing to a call the service has already refused can fail locally and
            # hide the refusal behind INTERNAL. protomesh services answer with headers
            # (the request id) as soon as they admit a stream, while a refusal comes
            # with none: wait for one or the other before writing.
            headers = await response_headers(call, self.stream_options.first_message_seconds)
            if headers is None or len(headers):
                await self._pump_lines(route, path_values, query, request, receive, call)
        except (BindError, GatewayError, bodies.ClientDisconnected):
            call.cancel()
            raise
        except (grpc.RpcError, asyncio.InvalidStateError):
            pass  # the call ended early; its status is the answer
        disconnected = asyncio.ensure_future(wait_disconnect(receive))
        try:
            return await self._unary_reply(route, call, request, send, disconnected)
        finally:
            disconnected.cancel()

    async def _bidi(
        self,
        route: Route,
        path_values: dict[str, str],
        query: list[tuple[str, str]],
        request: _Request,
        receive: Receive,
        send: Send,
        metadata: Any,
        deadline: float | None,
    ) -> int:
        call = self.backends.stub(route.method)(metadata=metadata, timeout=deadline)
        failure: list[GatewayError] = []

        async def pump_then_watch() -> None:
            try:
                await self._pump_lines(route, path_values, query, request, receive, call)
            except BindError as exc:
                failure.append(bad_request(str(exc), exc.field))
                call.cancel()
            except GatewayError as exc:
                failure.append(exc)
                call.cancel()
            except bodies.ClientDisconnected:
                return
            except (grpc.RpcError, asyncio.InvalidStateError):
                pass
            await wait_disconnect(receive)

        watcher = asyncio.ensure_future(pump_then_watch())
        try:
            return await relay_stream(
                call,
                route,
                negotiate(request.headers),
                send,
                watcher,
                request.response_headers,
                self.stream_options,
                failure=_first(failure),
            )
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher


def _first(errors: list[GatewayError]) -> Callable[[], GatewayError | None]:
    return lambda: errors[0] if errors else None

"""The server interceptor chain: the one place for cross-cutting behaviour.

For every protomesh RPC, in this order of concern:
1. request id (from `x-request-id` or new) and one structured log line per call;
2. metrics (RED per method);
3. authentication (bearer JWT → Principal) and the scopes the contract requires,
   then the tenant's rate limit;
4. validation of the request against its protovalidate rules (unary and
   server-streaming requests; client-streaming handlers validate each item
   themselves so one bad item does not fail the stream);
5. the deadline (the caller's, or the contract's default), exposed to handlers
   for propagation;
6. error mapping: typed domain errors → `google.rpc.Status` with details;
   anything unexpected → INTERNAL, logged with the request id, no trace leaked.

Wrapped handlers are built once per method, so a call pays only for the work
above, not for re-assembling the chain. Methods outside the contracts (health,
reflection) pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import types
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, cast

import asyncpg
import grpc
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from services.platform import validation
from services.platform.auth import TokenVerifier, bearer_token
from services.platform.context import CallContext, bind_call
from services.platform.deadlines import absolute_deadline, effective_timeout
from services.platform.errors import ProtomeshError, internal_status
from services.platform.limits import TenantLimits
from services.platform.logs import access_line, get_logger
from services.platform.metrics import RPC_DURATION, RPC_REQUESTS
from services.platform.policy import MethodInfo

log = get_logger("protomesh.rpc")

REQUEST_ID_HEADER = "x-request-id"
_TRANSIENT_DB_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
)
_CONFLICT_DB_ERRORS = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
# Text PostgreSQL cannot store (U+0000 in a string or a JSON value): the caller's input is
# invalid, the service is not at fault.
_UNSTORABLE_TEXT_ERRORS = (
    asyncpg.CharacterNotInRepertoireError,
    asyncpg.UntranslatableCharacterError,
)


class RateLimiter(Protocol):
    """Decides whether a tenant may make one more call of a rate-limit class."""

    def check(self, tenant_id: str, rate_limit_class: int) -> None:
        """Returns, or raises ResourceExhausted with a retry delay."""


class WrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """An interceptor that wraps a method's handler once and serves the wrapper from
    then on; `wrap` returns None for handlers it leaves alone."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        wrapped = self._wrapped.get(details.method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(details)
        wrapped = None if handler is None else self.wrap(details.method, handler)
        if wrapped is None:
            return handler
        self._wrapped[details.method] = wrapped
        return wrapped

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        raise NotImplementedError


class ServerChain(WrappingInterceptor):
    def __init__(
        self,
        methods: dict[str, MethodInfo],
        verifier: TokenVerifier,
        rate_limiter: RateLimiter | None = None,
        limits: TenantLimits | None = None,
    ) -> None:
        super().__init__()
        self.methods = methods
        self.verifier = verifier
        self.rate_limiter = rate_limiter
        self.limits = limits

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        info = self.methods.get(method)
        return None if info is None else self._wrap(handler, info)

    # -- the steps, in order -------------------------------------------------

    def _start(
        self, info: MethodInfo, context: grpc.aio.ServicerContext
    ) -> tuple[CallContext, dict[str, Any]]:
        metadata = {m.key: m.value for m in context.invocation_metadata() or ()}
        call = CallContext(
            method=info,
            request_id=str(metadata.get(REQUEST_ID_HEADER) or uuid.uuid4().hex)[:128],
            traceparent=str(metadata.get("traceparent", "")),
        )
        bind_call(call)
        return call, metadata

    def _admit(
        self, call: CallContext, metadata: dict[str, Any], context: grpc.aio.ServicerContext
    ) -> Callable[[], None] | None:
        """Authenticates and authorizes the call and applies the tenant's limits;
        returns the release of its in-flight slot (None when not counted)."""
        info = call.method
        token = bearer_token(metadata.get("authorization"))
        call.principal = self.verifier.verify(token)
        call.token = token
        call.principal.require_scopes(info.scopes)
        tenant = call.principal.tenant_id
        if self.limits is not None:
            self.limits.check(tenant, info.rate_limit_class)
        if self.rate_limiter is not None:
            self.rate_limiter.check(tenant, info.rate_limit_class)
        call.deadline = absolute_deadline(effective_timeout(context, info))
        if self.limits is not None and not info.server_streaming:
            # Long-lived watches are bounded by their rate class, not by this cap.
            return self.limits.enter(tenant)
        return None

    async def _fail(
        self, exc: BaseException, call: CallContext, context: grpc.aio.ServicerContext
    ) -> None:
        """Aborts the call with the status `exc` maps to."""
        if isinstance(exc, ProtomeshError):
            status = exc.to_status()
        elif isinstance(exc, NotImplementedError):
            status = status_pb2.Status(
                code=code_pb2.UNIMPLEMENTED, message=f"{call.method.path} is not implemented yet"
            )
        elif isinstance(exc, TimeoutError):
            status = status_pb2.Status(code=code_pb2.DEADLINE_EXCEEDED, message="deadline exceeded")
        elif isinstance(exc, _CONFLICT_DB_ERRORS):
            status = status_pb2.Status(
                code=code_pb2.ABORTED, message="concurrent change conflict; retry the call"
            )
        elif isinstance(exc, _UNSTORABLE_TEXT_ERRORS):
            status = status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT,
                message="a string holds a character that cannot be stored (U+0000)",
            )
        elif isinstance(exc, _TRANSIENT_DB_ERRORS):
            log.warning("database unavailable", request_id=call.request_id, error=str(exc))
            status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="database unavailable")
        else:
            log.exception("unhandled error", request_id=call.request_id, rpc=call.method.path)
            status = internal_status(call.request_id)
        grpc_status = rpc_status.to_status(status)
        await context.abort(
            grpc_status.code,
            grpc_status.details,
            trailing_metadata=(
                *grpc_status.trailing_metadata,
                (REQUEST_ID_HEADER, call.request_id),
            ),
        )

    def _finish(self, call: CallContext, code: grpc.StatusCode, started: float) -> None:
        """Records metrics and the access log line after the response is on its way:
        scheduled on the loop rather than run inline, so it adds no latency."""
        elapsed = time.perf_counter() - started
        asyncio.get_running_loop().call_soon(_record, call, code, elapsed)

    # -- wrapping per streaming kind ----------------------------------------

    def _wrap(self, handler: grpc.RpcMethodHandler, info: MethodInfo) -> grpc.RpcMethodHandler:
        chain = self
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }

        async def run_unary(request_or_iterator: Any, context: Any, inner: Any) -> Any:
            started = time.perf_counter()
            call, metadata = chain._start(info, context)
            code = grpc.StatusCode.OK
            release: Callable[[], None] | None = None
            try:
                release = chain._admit(call, metadata, context)
                if info.client_streaming:
                    # Admitted: tell the caller before it sends the stream (see run_stream).
                    await context.send_initial_metadata(((REQUEST_ID_HEADER, call.request_id),))
                else:
                    validation.validate(request_or_iterator)
                async with asyncio.timeout_at(_loop_deadline(call)):
                    response = inner(request_or_iterator, context)
                    if inspect.isawaitable(response):
                        response = await response
                context.set_trailing_metadata(((REQUEST_ID_HEADER, call.request_id),))
                return response
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as exc:
                code = _code_of(exc)
                await chain._fail(exc, call, context)
            finally:
                if release is not None:
                    release()
                chain._finish(call, code, started)

        async def run_stream(
            request_or_iterator: Any, context: Any, inner: Any
        ) -> AsyncGenerator[Any, None]:
            started = time.perf_counter()
            call, metadata = chain._start(info, context)
            code = grpc.StatusCode.OK
            release: Callable[[], None] | None = None
            try:
                release = chain._admit(call, metadata, context)
                if not info.client_streaming:
                    validation.validate(request_or_iterator)
                # Admitted: say so now (response headers), so a caller such as the
                # gateway knows the stream is accepted before its first message.
                await context.send_initial_metadata(((REQUEST_ID_HEADER, call.request_id),))
                async with (
                    asyncio.timeout_at(_loop_deadline(call)),
                    contextlib.aclosing(inner(request_or_iterator, context)) as responses,
                ):
                    async for response in responses:
                        yield response
                context.set_trailing_metadata(((REQUEST_ID_HEADER, call.request_id),))
            except (asyncio.CancelledError, GeneratorExit):
                # GeneratorExit: closed at a `yield` (the caller went away mid-write).
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as exc:
                code = _code_of(exc)
                await chain._fail(exc, call, context)
            finally:
                if release is not None:
                    release()
                chain._finish(call, code, started)

        if handler.unary_unary:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: Any) -> Any:
                return await run_unary(request, context, inner_uu)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **serializers)
        if handler.stream_unary:
            inner_su = handler.stream_unary

            async def stream_unary(requests: Any, context: Any) -> Any:
                return await run_unary(requests, context, inner_su)

            return grpc.stream_unary_rpc_method_handler(stream_unary, **serializers)
        if handler.unary_stream:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                async with _closed_with_call(run_stream(request, context, inner_us), context) as rs:
                    async for response in rs:
                        yield response

            return grpc.unary_stream_rpc_method_handler(unary_stream, **serializers)
        inner_ss = handler.stream_stream

        async def stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
            async with _closed_with_call(run_stream(requests, context, inner_ss), context) as rs:
                async for response in rs:
                    yield response

        return grpc.stream_stream_rpc_method_handler(stream_stream, **serializers)


def _record(call: CallContext, code: grpc.StatusCode, elapsed: float) -> None:
    info = call.method
    RPC_REQUESTS.labels(info.service, info.name, code.name).inc()
    RPC_DURATION.labels(info.service, info.name).observe(elapsed)
    principal = call.principal
    access_line(
        "rpc",
        rpc=info.path,
        code=code.name,
        duration_ms=round(elapsed * 1000, 3),
        request_id=call.request_id,
        trace_id=call.trace_id,
        tenant=principal.tenant_id if principal else None,
        user=principal.user_id if principal else None,
    )


@contextlib.asynccontextmanager
async def _closed_with_call(
    responses: AsyncGenerator[Any, None], context: grpc.aio.ServicerContext
) -> AsyncIterator[AsyncGenerator[Any, None]]:
    """`responses` (a streaming handler's generators), closed when the call ends.

    gRPC cancels a call whose client went away while a message is being written by
    cancelling its task at the write, outside the handler's generators, which stay
    suspended at their `yield` until the garbage collector finalizes them (holding
    subscriptions and connections, and never logging the call). So when the call is
    done while they are suspended, they are closed at once: GeneratorExit at the
    `yield`, their cleanup runs and the call is counted CANCELLED. (The handlers stay
    async generators: wrappers such as OpenTelemetry's iterate them.)"""
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []

    generator = cast(types.AsyncGeneratorType[Any, None], responses)

    async def close() -> None:
        # RuntimeError: it was resumed meanwhile (an __anext__ in flight); the
        # task's own cancellation ends it then.
        with contextlib.suppress(RuntimeError):
            await generator.aclose()

    def on_done(_context: Any) -> None:
        if generator.ag_frame is not None and not generator.ag_running:
            closing.append(loop.create_task(close()))

    context.add_done_callback(on_done)
    async with contextlib.aclosing(responses):
        yield responses


def _loop_deadline(call: CallContext) -> float | None:
    """The call's deadline on the event loop's clock (asyncio.timeout_at)."""
    remaining = call.time_remaining()
    if remaining is None:
        return None
    return asyncio.get_running_loop().time() + remaining


def _code_of(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, ProtomeshError):
        return exc.code
    if isinstance(exc, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if isinstance(exc, _CONFLICT_DB_ERRORS):
        return grpc.StatusCode.ABORTED
    if isinstance(exc, _UNSTORABLE_TEXT_ERRORS):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, _TRANSIENT_DB_ERRORS):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL

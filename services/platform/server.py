"""Bootstrap of one service process: a `grpc.aio` server with the interceptor
chain, health and reflection, its database pool and background work, and a
graceful shutdown (health → NOT_SERVING, drain in-flight RPCs, close pools).

With TLS configured (`PROTOMESH_TLS_*`) the server binds its port with TLS only,
and under `PROTOMESH_TLS_CLIENT_AUTH=require` only for clients with a certificate
from the CA; it never opens a plaintext port for RPCs. The one plaintext port it
may open, `PROTOMESH_HEALTH_PORT`, serves nothing but `grpc.health.v1` (no token
is ever sent there, no data comes back) for probes that cannot speak TLS.

Reflection serves the contracts with their comments
(`services.platform.reflection`), so `grpcurl describe` shows the docs.

Each service provides a `ServiceSpec`: its descriptor, the generated
`add_*Servicer_to_server` function and an async factory that builds the
servicer (and any background loops) from the shared `Runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from services.platform.auth import JwksSource, TokenVerifier
from services.platform.channels import server_options
from services.platform.clients import ServiceClients
from services.platform.config import Settings
from services.platform.db import APP_ROLE, Pool, create_pool, with_user
from services.platform.identity import ServiceIdentity
from services.platform.interceptors import RateLimiter, ServerChain, WrappingInterceptor
from services.platform.limits import LimitConfig, TenantLimits
from services.platform.logs import configure_logging, get_logger
from services.platform.policy import service_methods
from services.platform.reflection import CommentedReflection, commented_files
from services.platform.telemetry import configure_tracing, serve_metrics
from services.platform.tls import load as load_tls

log = get_logger("protomesh.server")

# How shutdown spends its grace period. First health turns NOT_SERVING while the
# listener still accepts: clients that watch health (gRPC client-side health
# checking, `protomesh status`) move their calls to a peer instead of having them
# refused. Last, a reserve for closing pools and loops, so the process is gone
# within the grace period even when an RPC has to be cut. The drain gets the rest.
HEALTH_NOTICE_SHARE, HEALTH_NOTICE_MAX_SECONDS = 0.25, 2.0
TEARDOWN_SHARE, TEARDOWN_MAX_SECONDS = 0.1, 1.0
STREAM_END_RETRY_SECONDS = 0.05

# Keepalive, on every server (docs/platform.md, "Keepalive"). gRPC's server
# defaults take a client ping less than 5 minutes after the previous one, with no
# data sent in between, as abuse, and close the connection (GOAWAY
# `too_many_pings`) at the third: an idle watch under a client pinging every
# 5-10 s (grpc-js and grpc-go users set such values) died within 20-40 s. Allowed
# here: a ping every 4 s or slower (5 s with a margin for timer jitter), with or
# without a call open; a client pinging faster still gets the GOAWAY after two
# strikes. The server pings an idle connection itself after 30 s (and gives up on
# it 10 s later), so a client that vanished without closing is found and its
# watches end.
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.http2.min_ping_interval_without_data_ms", 4_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
)


@dataclass
class Runtime:
    """Shared dependencies a service factory builds its servicer from."""

    settings: Settings
    service: str
    pool: Pool
    clients: ServiceClients
    identity: ServiceIdentity


@dataclass
class ServiceParts:
    """What a service factory returns: the servicer, background loops to run while
    serving (indexers, sweepers), and an optional async cleanup."""

    servicer: Any
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    close: Callable[[], Awaitable[None]] | None = None
    rate_limiter: RateLimiter | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """How to serve one protomesh service."""

    name: str
    descriptor: ServiceDescriptor
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    build: Callable[[Runtime], Awaitable[ServiceParts]]


def app_dsn(settings: Settings) -> str:
    if settings.app_database_url:
        return settings.app_database_url
    if not settings.database_url:
        raise RuntimeError("PROTOMESH_DATABASE_URL is not set (protomesh up sets it)")
    return with_user(settings.database_url, APP_ROLE)


def direct_dsn(settings: Settings) -> str:
    """The DSN of connections that keep session state (LISTEN, task worker sessions):
    the database itself even when `app_dsn` is a transaction-mode pooler."""
    return settings.direct_database_url or app_dsn(settings)


def token_verifier(settings: Settings) -> TokenVerifier:
    return TokenVerifier(
        JwksSource(settings.jwks_source),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_seconds=settings.jwt_leeway_seconds,
    )


class StreamDrain(WrappingInterceptor):
    """Ends server streams (watches) with UNAVAILABLE once shutdown starts.

    A watch never completes by itself, so draining would only hold the shutdown for
    the whole grace period and then cut it; ended at once, its client resumes from
    its cursor on another replica and the process exits as soon as the unary calls
    it accepted are done."""

    def __init__(self) -> None:
        super().__init__()
        self._streams: dict[asyncio.Task[Any], int] = {}  # running → cancels sent
        self._closing = False

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        if not handler.response_streaming:
            return None
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        drained = self._drained(handler.unary_stream or handler.stream_stream)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(drained, **serializers)
        return grpc.stream_stream_rpc_method_handler(drained, **serializers)

    def _drained(self, inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """`inner` ended with UNAVAILABLE on shutdown: an async generator, or a
        coroutine that answers with `context.write` (like Health.Watch); gRPC tells
        the two apart by the function, so the wrapper is of the same kind."""
        if inspect.isasyncgenfunction(inner):

            async def messages(request: Any, context: Any) -> AsyncIterator[Any]:
                async with self._ended_on_shutdown(context):
                    async for message in inner(request, context):
                        yield message

            return messages

        async def writes(request: Any, context: Any) -> Any:
            async with self._ended_on_shutdown(context):
                return await inner(request, context)

        return writes

    @contextlib.asynccontextmanager
    async def _ended_on_shutdown(self, context: Any) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._streams[task] = 0
        try:
            if self._closing:
                raise asyncio.CancelledError
            yield
        except asyncio.CancelledError:
            for _ in range(self._streams.pop(task, 0)):
                task.uncancel()
            if not self._closing or task.cancelling():
                raise  # the client went away, or the server is stopping hard
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "server shutting down; resume on another replica"
            )
        finally:
            self._streams.pop(task, None)

    def end_streams(self) -> int:
        """From now on every server stream ends with UNAVAILABLE: cancels those still
        running (again, when a cancellation was lost, e.g. to Python 3.11's
        `asyncio.wait_for`); returns how many that was."""
        self._closing = True
        for task in self._streams:
            self._streams[task] += 1
            task.cancel()
        return len(self._streams)


class ServiceServer:
    """One running service: start, then stop (gracefully) or wait for a signal."""

    def __init__(self, spec: ServiceSpec, settings: Settings, port: int | None = None) -> None:
        self.spec = spec
        self.settings = settings
        self.requested_port = (
            settings.port_of(spec.name, settings.replica) if port is None else port
        )
        self.port = 0
        self.health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self._pool: Pool | None = None
        self._parts: ServiceParts | None = None
        self._clients: ServiceClients | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._streams = StreamDrain()

    async def start(self) -> int:
        settings = self.settings
        tls = load_tls(settings.tls)  # a TlsError here: nothing is bound or connected yet
        self._pool = await create_pool(
            app_dsn(settings),
            settings.db_pool_min,
            settings.db_pool_max,
            statement_cache_size=settings.db_statement_cache_size,
        )
        identity = ServiceIdentity(settings, self.spec.name)
        self._clients = ServiceClients(settings, identity)
        runtime = Runtime(settings, self.spec.name, self._pool, self._clients, identity)
        self._parts = await self.spec.build(runtime)
        chain = ServerChain(
            service_methods(self.spec.descriptor),
            token_verifier(settings),
            self._parts.rate_limiter,
            TenantLimits(LimitConfig.from_settings(settings), self.spec.name),
        )
        server = grpc.aio.server(
            interceptors=[chain, self._streams],
            options=[*server_options(settings), *KEEPALIVE_OPTIONS],
        )
        self.spec.add_to_server(self._parts.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            CommentedReflection(
                (self.spec.descriptor.full_name, reflection.SERVICE_NAME, health.SERVICE_NAME),
                commented_files(),
            ),
            server,
        )
        address = f"{settings.host}:{self.requested_port}"
        if tls is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, tls.server_credentials())
        if self.port == 0:
            raise RuntimeError(f"cannot bind {address}")
        await server.start()
        self._server = server
        if settings.health_port:
            self._health_server = await self._serve_health(settings.health_port)
        loops = [*self._parts.background, self._watch_database]
        self._tasks = [asyncio.create_task(self._supervise(loop)) for loop in loops]
        await self._set_health(serving=True)
        log.info(
            "serving",
            service=self.spec.name,
            address=f"{settings.host}:{self.port}",
            tls="off" if tls is None else ("mutual" if tls.require_client_auth else "on"),
        )
        return self.port

    async def _serve_health(self, port: int) -> grpc.aio.Server:
        """`grpc.health.v1` alone, in plaintext, on `port` (the same statuses)."""
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0), *KEEPALIVE_OPTIONS])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if server.add_insecure_port(f"{self.settings.host}:{port}") == 0:
            raise RuntimeError(f"cannot bind the health port {self.settings.host}:{port}")
        await server.start()
        return server

    async def _set_health(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", self.spec.descriptor.full_name):
            await self.health.set(name, status)

    async def _watch_database(self) -> None:
        """Health follows the database: NOT_SERVING while PostgreSQL cannot answer (so
        load balancers and `protomesh status` see it), SERVING again once it does."""
        assert self._pool is not None
        serving = True
        while True:
            await asyncio.sleep(self.settings.health_check_interval_seconds)
            try:
                async with asyncio.timeout(2.0):
                    await self._pool.fetchval("SELECT 1")
                ok = True
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                ok = False
            if ok != serving:
                serving = ok
                log.warning("database health changed", service=self.spec.name, serving=ok)
                await self._set_health(serving=ok)

    async def _supervise(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Runs a background loop, restarting it after an unexpected error."""
        while True:
            try:
                await loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "background loop failed; restarting", loop=getattr(loop, "__name__", "?")
                )
                await asyncio.sleep(1.0)

    async def stop(self, grace: float | None = None) -> None:
        """Within `grace` seconds: health first (NOT_SERVING) while still serving for
        a share of it, then stop accepting, end the watches (UNAVAILABLE) and drain
        the in-flight calls, then background loops and pools."""
        grace = self.settings.grace_period_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            notice = min(grace * HEALTH_NOTICE_SHARE, HEALTH_NOTICE_MAX_SECONDS)
            teardown = min(grace * TEARDOWN_SHARE, TEARDOWN_MAX_SECONDS)
            await asyncio.sleep(notice)
            stopping = asyncio.ensure_future(self._server.stop(grace - notice - teardown))
            await asyncio.sleep(0)  # the listener is closed: no stream starts after this
            while self._streams.end_streams() and not stopping.done():
                await asyncio.wait({stopping}, timeout=STREAM_END_RETRY_SECONDS)
            await stopping
        if self._health_server is not None:
            await self._health_server.stop(0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._parts is not None and self._parts.close is not None:
            await self._parts.close()
        if self._clients is not None:
            await self._clients.close()
        if self._pool is not None:
            await self._pool.close()
        log.info("stopped", service=self.spec.name)

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


async def serve_forever(spec: ServiceSpec, settings: Settings) -> None:
    """Runs a service until SIGTERM or SIGINT, then shuts it down gracefully."""
    server = ServiceServer(spec, settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(spec: ServiceSpec) -> None:
    """Process entry point of a service (`python -m services.<name>`)."""
    settings = Settings.from_env()
    configure_logging(spec.name, settings.log_level, settings.log_format)
    configure_tracing(spec.name, settings)
    serve_metrics(settings, spec.name)
    asyncio.run(serve_forever(spec, settings))

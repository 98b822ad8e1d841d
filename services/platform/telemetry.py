"""Tracing and metrics endpoints.

OpenTelemetry is off by default and then nothing is installed: no interceptors,
no wrappers, no SDK imported, zero cost. With `PROTOMESH_OTEL_EXPORTER=console|otlp`
every process instruments its gRPC server and clients, asyncpg and (in the
gateway) ASGI, so one trace runs from the HTTP request through every service hop
and query. The task queue carries the W3C `traceparent`/`tracestate` inside each
task so the trace continues in the worker (`span(..., traceparent=...)`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import start_http_server

from services.platform.config import Settings
from services.platform.logs import get_logger
from services.platform.metrics import BUILD_INFO, version

log = get_logger("protomesh.telemetry")
_configured = False
_LEADING_SQL_COMMENTS = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)+", re.DOTALL)
_POOL_RESET = "SELECT pg_advisory_unlock_all();"


class SpanLike(Protocol):
    """What code may do with the span `span()` yields (a no-op when tracing is off)."""

    def set_attribute(self, key: str, value: Any) -> None: ...

    def set_attributes(self, attributes: Mapping[str, Any]) -> None: ...


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        pass


NO_SPAN: SpanLike = _NoSpan()


def tracing_enabled(settings: Settings) -> bool:
    return settings.otel_exporter.lower() not in ("", "off", "none")


def configure_tracing(service: str, settings: Settings, exporter: Any = None) -> bool:
    """Installs the tracer provider and instrumentations once per process; returns
    whether tracing is on. `exporter` overrides the configured one (tests pass an
    in-memory exporter, exported synchronously). Call it before creating gRPC
    servers and channels: the instrumentation wraps their factories."""
    global _configured
    if _configured:
        return True
    if exporter is None and not tracing_enabled(settings):
        return False
    from opentelemetry import trace
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
        filters,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"protomesh-{service}"}),
        sampler=_sampler(),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.otel_exporter.lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True))
        )
    trace.set_tracer_provider(provider)
    # Not the health service: the instrumentation treats every server-streaming
    # handler as an async generator, and grpc_health's aio Watch is a coroutine that
    # writes to its context, so wrapped it never runs and every health-checking
    # channel (services/platform/channels.py) would see its backends as failing.
    untraced_health = filters.negate(filters.health_check())
    GrpcAioInstrumentorServer(filter_=untraced_health).instrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient(filter_=untraced_health).instrument()  # type: ignore[no-untyped-call]
    postgres = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    # Span names are a statement's first word; the named queries open with `--`
    # comments, which the instrumentation strips only in their /* */ form.
    postgres._leading_comment_remover = _LEADING_SQL_COMMENTS
    postgres.instrument()
    _configured = True
    log.info("tracing on", exporter=settings.otel_exporter)
    return True


def _sampler() -> Any:
    """Every trace (parent-based), minus the statement asyncpg's pool runs on each
    release of a connection: one span per query, not two."""
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_ON,
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
    )

    class SkipPoolResets(Sampler):
        def __init__(self) -> None:
            self.inner = ParentBased(ALWAYS_ON)

        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            statement = str((attributes or {}).get("db.statement", ""))
            if statement.startswith(_POOL_RESET):
                return SamplingResult(Decision.DROP)
            return self.inner.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return "SkipPoolResets{ParentBased{ALWAYS_ON}}"

    return SkipPoolResets()


def is_configured() -> bool:
    return _configured


def asgi_middleware() -> list[Any]:
    """The gateway's tracing middleware (outermost): a server span per HTTP request,
    continuing the caller's `traceparent`; none when tracing is off."""
    if not _configured:
        return []
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from starlette.middleware import Middleware

    # The per-message receive/send spans of a request add nothing but volume.
    return [Middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"])]


@contextlib.contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    traceparent: str = "",
    tracestate: str = "",
) -> Iterator[SpanLike]:
    """A span around a block — a no-op when tracing is off. `traceparent` (W3C) makes
    it a child of a remote span, e.g. the CreateTask call a queued task came from;
    without it the span is a child of the current one."""
    if not _configured:
        yield NO_SPAN
        return
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = (
        TraceContextTextMapPropagator().extract(
            {"traceparent": traceparent, "tracestate": tracestate}
        )
        if traceparent
        else None
    )
    tracer = trace.get_tracer("protomesh")
    with tracer.start_as_current_span(
        name, context=parent, attributes=dict(attributes or {})
    ) as current:
        yield current


def current_trace_context() -> tuple[str, str]:
    """The W3C `traceparent` and `tracestate` of the active span (('', '') when
    tracing is off or no span is active): what a task stores to continue the trace."""
    if not _configured:
        return "", ""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent", ""), carrier.get("tracestate", "")


def current_traceparent() -> str:
    """The W3C traceparent of the active span ('' when tracing is off or no span)."""
    return current_trace_context()[0]


def serve_metrics(settings: Settings, component: str, port: int | None = None) -> int:
    """Starts the Prometheus endpoint of this process on `port` (default: the
    component's port from the settings); returns it (0 if disabled)."""
    port = settings.metrics_port_of(component, settings.replica) if port is None else port
    if port:
        start_http_server(port, addr=settings.host)
        BUILD_INFO.labels(component, version()).set(1)
        log.info("metrics", component=component, address=f"{settings.host}:{port}")
    return port

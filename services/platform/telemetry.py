"""Tracing and metrics endpoints.

OpenTelemetry is off by default and then nothing is installed: no interceptors,
no wrappers, zero cost. With `PROTOMESH_OTEL_EXPORTER=console|otlp` every process
instruments its gRPC server and clients, asyncpg and (in the gateway) ASGI, so
one trace runs from the HTTP request through every service hop and query. The
task queue carries the W3C `traceparent` inside each task so the trace
continues in the worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import start_http_server

from services.platform.config import Settings
from services.platform.logs import get_logger
from services.platform.metrics import BUILD_INFO, version

log = get_logger("protomesh.telemetry")
_configured = False


def tracing_enabled(settings: Settings) -> bool:
    return settings.otel_exporter.lower() not in ("", "off", "none")


def configure_tracing(service: str, settings: Settings, exporter: Any = None) -> bool:
    """Installs the tracer provider and instrumentations once per process; returns
    whether tracing is on. `exporter` overrides the configured one (tests pass an
    in-memory exporter)."""
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
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"protomesh-{service}"}))
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
    GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    _configured = True
    log.info("tracing on", exporter=settings.otel_exporter)
    return True


def is_configured() -> bool:
    return _configured


@contextlib.contextmanager
def span(
    name: str, attributes: Mapping[str, Any] | None = None, traceparent: str = ""
) -> Iterator[None]:
    """A span around a block — a no-op when tracing is off. `traceparent` (W3C) makes
    it a child of a remote span, e.g. the CreateTask call a queued task came from."""
    if not _configured:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = (
        TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        if traceparent
        else None
    )
    tracer = trace.get_tracer("protomesh")
    with tracer.start_as_current_span(name, context=parent, attributes=dict(attributes or {})):
        yield


def current_traceparent() -> str:
    """The W3C traceparent of the active span ('' when tracing is off or no span)."""
    if not _configured:
        return ""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def serve_metrics(settings: Settings, component: str, port: int | None = None) -> int:
    """Starts the Prometheus endpoint of this process on `port` (default: the
    component's port from the settings); returns it (0 if disabled)."""
    port = settings.metrics_port_of(component) if port is None else port
    if port:
        start_http_server(port, addr=settings.host)
        BUILD_INFO.labels(component, version()).set(1)
        log.info("metrics", component=component, address=f"{settings.host}:{port}")
    return port

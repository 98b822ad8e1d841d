"""Run by test_tracing.py in a child process: serves DocumentService with tracing on
(in-memory exporter), calls it through an instrumented client, prints the spans.

`python -m tests.platform.tracing_probe off`: the same call with tracing off (the
default), then reports what tracing machinery got loaded or installed — none."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import grpc

from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.platform.config import Settings
from services.platform.context import current_call
from services.platform.server import Runtime, ServiceParts, ServiceServer, ServiceSpec
from services.platform.telemetry import configure_tracing


class Traced(pb_grpc.DocumentServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.pool = runtime.pool

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Any) -> pb.Document:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return pb.Document(name=request.name, title=current_call().trace_id)


async def build(runtime: Runtime) -> ServiceParts:
    return ServiceParts(servicer=Traced(runtime))


SPEC = ServiceSpec(
    "document",
    pb.DESCRIPTOR.services_by_name["DocumentService"],
    pb_grpc.add_DocumentServiceServicer_to_server,
    build,
)


def probe_settings() -> Settings:
    return Settings(
        data_dir=Path(os.environ["PROBE_DATA_DIR"]), database_url=os.environ["PROBE_DSN"]
    )


async def call(port: int, metadata: tuple[tuple[str, str], ...] = ()) -> pb.Document:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        doc: pb.Document = await pb_grpc.DocumentServiceStub(channel).GetDocument(
            pb.GetDocumentRequest(name="documents/traced"),
            metadata=(("authorization", f"Bearer {os.environ['PROBE_TOKEN']}"), *metadata),
        )
    return doc


async def main() -> None:
    # Imported here: the `off` run must not load the SDK.
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    settings = probe_settings()
    exporter = InMemorySpanExporter()
    configure_tracing("probe", settings, exporter=exporter)
    server = ServiceServer(SPEC, settings, port=0)
    await server.start()
    tracer = trace.get_tracer("probe")
    with tracer.start_as_current_span("client-root"):
        doc = await call(server.port)
    await server.stop(grace=1.0)
    spans = [
        {
            "name": s.name,
            "trace_id": f"{s.context.trace_id:032x}",
            "span_id": f"{s.context.span_id:016x}",
            "parent": f"{s.parent.span_id:016x}" if s.parent else None,
            "kind": s.kind.name,
        }
        for s in exporter.get_finished_spans()
    ]
    print(json.dumps({"handler_trace_id": doc.title, "spans": spans}))


async def main_off() -> None:
    """With tracing off: an RPC (server, client, a query) and the gateway's app,
    then what tracing left behind — nothing beyond the caller's trace id, which
    the access log and the handler still see."""
    import asyncpg
    import grpc.aio._channel
    import grpc.aio._server

    from gateway.app import create_app
    from gateway.config import GatewayConfig
    from services.platform import telemetry

    settings = probe_settings()
    on = configure_tracing("probe", settings)
    server = ServiceServer(SPEC, settings, port=0)
    await server.start()
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    doc = await call(server.port, (("traceparent", caller),))
    await server.stop(grace=1.0)
    app = create_app(GatewayConfig.from_settings(settings))
    with telemetry.span("never") as span:
        no_span = span is telemetry.NO_SPAN
    loaded = sorted(
        name
        for name in sys.modules
        if name.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation"))
    )
    report = {
        "configured": on,
        "handler_trace_id": doc.title,
        "sdk_or_instrumentation_loaded": loaded,
        "grpc_server_patched": grpc.aio.server is not grpc.aio._server.server,
        "grpc_channel_patched": grpc.aio.insecure_channel is not grpc.aio._channel.insecure_channel,
        "asyncpg_patched": hasattr(asyncpg.connection.Connection.execute, "__wrapped__"),
        "gateway_middleware": [m.cls.__name__ for m in app.user_middleware],
        "span_is_no_op": no_span,
        "current_traceparent": telemetry.current_traceparent(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main_off() if sys.argv[1:] == ["off"] else main())

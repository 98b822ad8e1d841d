"""Run by test_tracing.py in a child process: serves DocumentService with tracing on
(in-memory exporter), calls it through an instrumented client, prints the spans."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

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


async def main() -> None:
    settings = Settings(
        data_dir=Path(os.environ["PROBE_DATA_DIR"]), database_url=os.environ["PROBE_DSN"]
    )
    exporter = InMemorySpanExporter()
    configure_tracing("probe", settings, exporter=exporter)
    spec = ServiceSpec(
        "document",
        pb.DESCRIPTOR.services_by_name["DocumentService"],
        pb_grpc.add_DocumentServiceServicer_to_server,
        build,
    )
    server = ServiceServer(spec, settings, port=0)
    await server.start()
    tracer = trace.get_tracer("probe")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.DocumentServiceStub(channel)
        with tracer.start_as_current_span("client-root"):
            doc = await stub.GetDocument(
                pb.GetDocumentRequest(name="documents/traced"),
                metadata=(("authorization", f"Bearer {os.environ['PROBE_TOKEN']}"),),
            )
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


if __name__ == "__main__":
    asyncio.run(main())

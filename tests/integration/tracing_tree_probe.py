"""Run by test_tracing_tree.py in a child process (tracing state is global and set
once per process): the whole system in one event loop — DocumentService,
SearchService with its indexer, CostService, TaskService, a task worker and the
gateway on uvicorn — with tracing on into an in-memory exporter. Ingests a
document, then answers a question through `POST /v1/tasks` (`rag.answer`) under
a given `traceparent`, and prints the finished spans and the task as JSON.

Environment: PROBE_DSN (owner DSN of the migrated session database),
PROBE_DATA_DIR, PROBE_TOKEN, PROBE_TRACEPARENT, PROBE_TRACESTATE. Logs (JSON, one line per RPC)
go to stderr.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.config import GatewayConfig
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from services.cost.service import make_spec as cost_spec
from services.document.service import make_spec as document_spec
from services.platform.config import Settings, WorkerSettings
from services.platform.db import with_database
from services.platform.logs import configure_logging
from services.platform.migrations import migrate
from services.platform.telemetry import configure_tracing
from services.search.embedders import HashingEmbedder
from services.search.indexer import IndexerOptions
from services.search.service import make_spec as search_spec
from services.task.extractive import ExtractiveGenerator, minilm_encoder
from services.task.service import SPEC as TASK_SPEC
from services.task.worker import build_worker, create_worker_pool
from tests.conftest import running
from tests.integration.gateway.harness import live_server

DATABASE = "tracing_tree"
QUESTION = "How far does the tachyon relay reach?"
CONTENT = (
    "The tachyon relay reaches forty light years on a single burst. "
    "It was built on the orbital yard in three weeks."
)
WORKER = WorkerSettings(count=2, lease_seconds=10, heartbeat_seconds=3, poll_seconds=0.5)
INDEXER = IndexerOptions(embed_batch_size=16, embed_idle_seconds=0.1, embed_retry_seconds=0.2)
WAIT_SECONDS = 30.0


async def fresh_database(owner_dsn: str) -> str:
    """A new migrated database of its own: the search indexer's checkpoint and the
    change feed then hold only this run's changes."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    dsn = with_database(owner_dsn, DATABASE)
    await migrate(dsn)
    return dsn


def described(span: ReadableSpan) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent": f"{span.parent.span_id:016x}" if span.parent else None,
        "attributes": {k: v for k, v in (span.attributes or {}).items()},
        "tracestate": span.context.trace_state.to_header(),
    }


async def main() -> None:
    configure_logging("probe", "info", "json")
    exporter = InMemorySpanExporter()
    base = Settings(
        data_dir=Path(os.environ["PROBE_DATA_DIR"]), database_url=os.environ["PROBE_DSN"]
    )
    configure_tracing("probe", base, exporter=exporter)
    settings = dataclasses.replace(
        base, database_url=await fresh_database(base.database_url), grace_period_seconds=1.0
    )
    auth = (("authorization", f"Bearer {os.environ['PROBE_TOKEN']}"),)
    trace_id = os.environ["PROBE_TRACEPARENT"].split("-")[1]

    async with running(document_spec(), settings) as (documents, doc_channel):
        settings = dataclasses.replace(settings, document_port=documents.port)
        search = search_spec(lambda: HashingEmbedder(), INDEXER, run_indexer=True)
        async with (
            running(search, settings) as (searcher, search_channel),
            running(cost_spec(), settings) as (cost, _),
        ):
            settings = dataclasses.replace(settings, search_port=searcher.port, cost_port=cost.port)
            async with running(TASK_SPEC, settings) as (tasks, _):
                settings = dataclasses.replace(settings, task_port=tasks.port)
                # Ingest first, and read it back through search (read-your-writes), so
                # the task's search has something to find. Another query than the
                # task's: search caches query embeddings.
                document = await doc_grpc.DocumentServiceStub(doc_channel).CreateDocument(
                    doc_pb.CreateDocumentRequest(
                        document=doc_pb.Document(title="Relay", content=CONTENT)
                    ),
                    metadata=auth,
                )
                found = await search_grpc.SearchServiceStub(search_channel).Search(
                    search_pb.SearchRequest(query="tachyon relay", min_sequence=document.sequence),
                    metadata=auth,
                    timeout=WAIT_SECONDS,
                )
                assert found.results, "the ingested document is not searchable"

                pool = await create_worker_pool(settings, 6)
                worker, clients = build_worker(
                    pool, settings, WORKER, ExtractiveGenerator(minilm_encoder())
                )
                worker.start()
                app = create_app(GatewayConfig.from_settings(settings))
                try:
                    exporter.clear()
                    async with (
                        live_server(app) as url,
                        httpx.AsyncClient(base_url=url, timeout=WAIT_SECONDS) as http,
                    ):
                        created = await http.post(
                            "/v1/tasks",
                            json={"type": "rag.answer", "input": {"question": QUESTION}},
                            headers={
                                "authorization": auth[0][1],
                                "traceparent": os.environ["PROBE_TRACEPARENT"],
                                "tracestate": os.environ["PROBE_TRACESTATE"],
                            },
                        )
                        created.raise_for_status()
                        task = await finished(http, created.json()["name"], auth[0][1])
                    await ran(exporter, trace_id)
                finally:
                    await worker.stop()
                    await clients.close()
                    await pool.close()
    spans = [described(s) for s in exporter.get_finished_spans()]
    print(json.dumps({"task": task, "spans": spans}))


async def finished(http: httpx.AsyncClient, name: str, authorization: str) -> dict[str, Any]:
    """The task once it reached a final state (polled without a traceparent, so the
    polls are traces of their own)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            reply = await http.get(f"/v1/{name}", headers={"authorization": authorization})
            task: dict[str, Any] = reply.json()
            if task["status"]["state"] in (
                "TASK_STATE_COMPLETED",
                "TASK_STATE_FAILED",
                "TASK_STATE_CANCELED",
                "TASK_STATE_REJECTED",
                "TASK_STATE_INPUT_REQUIRED",
            ):
                return task
            await asyncio.sleep(0.05)


async def ran(exporter: InMemorySpanExporter, trace_id: str) -> None:
    """Waits for the worker's task span to end: the task is final in the database
    just before the span around its attempt closes."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            spans = exporter.get_finished_spans()
            if any(
                s.name.startswith("task.run") and f"{s.context.trace_id:032x}" == trace_id
                for s in spans
            ):
                return
            await asyncio.sleep(0.02)


if __name__ == "__main__":
    asyncio.run(main())

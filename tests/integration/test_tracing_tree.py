"""With tracing on, one `rag.answer` request is one trace: HTTP at the gateway →
CreateTask → its INSERT; then, through the task queue, the worker's attempt →
Search (client, server, its queries and the query embedding) → the metered
generation (Reserve, the GenAI span, Commit). The services' access logs carry
the same trace id.

The system runs in a child process (tracing_tree_probe.py): the tracer provider
and the instrumentation are process-global and must not leak into this one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.platform.config import Settings
from tests.conftest import Mint

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACESTATE = "vendor=opaque"


@dataclass
class Run:
    task: dict[str, Any]
    spans: list[dict[str, Any]]
    logs: list[dict[str, Any]]

    def in_trace(self) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["trace_id"] == TRACE_ID]

    def one(self, name: str, kind: str, parent: dict[str, Any] | None = None) -> dict[str, Any]:
        found = [
            s
            for s in self.in_trace()
            if s["name"] == name
            and s["kind"] == kind
            and (parent is None or s["parent"] == parent["span_id"])
        ]
        assert len(found) == 1, (name, kind, [(s["name"], s["kind"]) for s in self.in_trace()])
        return found[0]

    def children(self, span: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in self.in_trace() if s["parent"] == span["span_id"]]

    def descendants(self, span: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for child in self.children(span):
            found += [child, *self.descendants(child)]
        return found


@pytest.fixture(scope="module")
def run(settings: Settings, mint: Mint) -> Run:
    env = {
        **os.environ,
        "PROBE_DSN": settings.database_url,
        "PROBE_DATA_DIR": str(settings.data_dir),
        "PROBE_TOKEN": mint(
            "t-traced", scopes="documents:write search:read tasks:write tasks:read"
        ),
        "PROBE_TRACEPARENT": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
        "PROBE_TRACESTATE": TRACESTATE,
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.tracing_tree_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    logs = []
    for line in result.stderr.splitlines():
        if line.startswith("{"):
            logs.append(json.loads(line))
    return Run(report["task"], report["spans"], logs)


def test_the_rag_answer_task_completes(run: Run) -> None:
    assert run.task["status"]["state"] == "TASK_STATE_COMPLETED", run.task["status"]


def test_the_gateway_continues_the_callers_trace_into_create_task(run: Run) -> None:
    http = next(s for s in run.in_trace() if s["kind"] == "SERVER" and s["parent"] == CALLER_SPAN)
    assert http["name"].startswith("POST")
    client = run.one("/protomesh.task.v1.TaskService/CreateTask", "CLIENT", parent=http)
    server = run.one("/protomesh.task.v1.TaskService/CreateTask", "SERVER", parent=client)
    inserts = [
        s
        for s in run.children(server)
        if "INSERT INTO task.tasks" in str(s["attributes"].get("db.statement", ""))
    ]
    assert len(inserts) == 1
    assert inserts[0]["kind"] == "CLIENT"
    assert inserts[0]["name"] == "WITH"  # named by its statement, past the comments


def test_the_worker_resumes_the_trace_stored_with_the_task(run: Run) -> None:
    create = run.one("/protomesh.task.v1.TaskService/CreateTask", "SERVER")
    attempt = run.one("task.run rag.answer", "INTERNAL", parent=create)
    assert attempt["attributes"]["protomesh.task.type"] == "rag.answer"
    assert attempt["attributes"]["protomesh.task.attempt"] == 1
    assert attempt["attributes"]["protomesh.task.name"] == run.task["name"]
    # The caller's tracestate came through the queue too (stored beside traceparent).
    assert attempt["tracestate"] == TRACESTATE
    # The worker's own queries (events, completion) are part of the attempt.
    assert any(
        s["kind"] == "CLIENT" and "db.statement" in s["attributes"] for s in run.children(attempt)
    )


def test_search_from_the_worker_is_a_traced_hop_with_its_queries(run: Run) -> None:
    attempt = run.one("task.run rag.answer", "INTERNAL")
    client = run.one("/protomesh.search.v1.SearchService/Search", "CLIENT", parent=attempt)
    server = run.one("/protomesh.search.v1.SearchService/Search", "SERVER", parent=client)
    below = run.descendants(server)
    assert any("db.statement" in s["attributes"] for s in below)
    embedding = next(s for s in below if s["name"].startswith("embeddings "))
    assert embedding["attributes"]["gen_ai.operation.name"] == "embeddings"
    assert embedding["attributes"]["gen_ai.request.model"] == "hashing-384"


def test_the_generation_is_a_genai_span_between_reserve_and_commit(run: Run) -> None:
    attempt = run.one("task.run rag.answer", "INTERNAL")
    chat = run.one("chat extractive-v2", "INTERNAL", parent=attempt)
    attributes = chat["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "extractive-v2"
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    # extractive-v2 is priced (at zero), so the call is metered like any other.
    for method in ("Reserve", "CommitReservation"):
        path = f"/protomesh.cost.v1.CostService/{method}"
        client = run.one(path, "CLIENT", parent=attempt)
        run.one(path, "SERVER", parent=client)


def test_every_span_of_the_request_shares_one_trace(run: Run) -> None:
    traced = run.in_trace()
    ids = {s["span_id"] for s in traced}
    # Connected: every span's parent is in the trace, except the caller's span.
    assert {s["parent"] for s in traced} - ids == {CALLER_SPAN}
    # The statement asyncpg's pool runs on every release is not traced.
    statements = [str(s["attributes"].get("db.statement", "")) for s in run.spans]
    assert not [s for s in statements if "pg_advisory_unlock_all" in s]


def test_access_logs_carry_the_trace_id(run: Run) -> None:
    lines = {
        line["rpc"]: line["trace_id"]
        for line in run.logs
        if line.get("event") == "rpc" and line.get("trace_id") == TRACE_ID
    }
    assert "/protomesh.task.v1.TaskService/CreateTask" in lines
    assert "/protomesh.search.v1.SearchService/Search" in lines
    assert "/protomesh.cost.v1.CostService/Reserve" in lines

"""Every process's Prometheus endpoint carries build info and the domain metrics,
and they follow real traffic (a document, searches, a task); `protomesh status`
reports health, versions, index lag, queue depth and spend as JSON."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import uuid

import httpx

from cli.status import Samples, parse_samples
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from tests.cluster import Cluster
from tests.conftest import bearer
from tests.e2e.test_newcomer import cli_environ, protomesh, wait_until_searchable

PROCESSES = ("document", "search", "task", "cost", "task-worker")


def metrics_url(cluster: Cluster, process: str) -> str:
    if process == "gateway":
        return f"{cluster.gateway}/metrics"
    return f"http://127.0.0.1:{cluster.settings.metrics_port_of(process)}/metrics"


async def scrape(cluster: Cluster, process: str) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(metrics_url(cluster, process))
    assert response.status_code == 200, process
    return parse_samples(response.text)


async def scrape_all(cluster: Cluster) -> dict[str, Samples]:
    return {process: await scrape(cluster, process) for process in PROCESSES}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


async def run_task(cluster: Cluster, token: str, task: task_pb.Task) -> int:
    """Submits the task and follows it to its end; returns the final state."""
    async with cluster.channel("task") as channel:
        stub = task_grpc.TaskServiceStub(channel)
        created = await stub.CreateTask(
            task_pb.CreateTaskRequest(task=task), metadata=bearer(token)
        )
        state = created.status.state
        async for item in stub.WatchTask(
            task_pb.WatchTaskRequest(name=created.name), metadata=bearer(token), timeout=60
        ):
            if item.HasField("event") and item.event.HasField("status_update"):
                state = item.event.status_update.state
        return state


async def test_every_process_exposes_build_info_and_its_gauges(cluster: Cluster) -> None:
    scraped = await scrape_all(cluster)
    scraped["gateway"] = await scrape(cluster, "gateway")

    for process, samples in scraped.items():
        info = samples.get("protomesh_build_info", [])
        assert [labels["service"] for labels, _ in info] == [process], process
        assert all(value == 1 and labels["version"] for labels, value in info), info
    depth = scraped["task-worker"]["protomesh_task_queue_depth"]
    assert {labels["state"] for labels, _ in depth} == {
        "submitted",
        "working",
        "input_required",
        "auth_required",
    }
    assert {"noop", "rag.answer"} <= {labels["type"] for labels, _ in depth}
    assert all(value >= 0 for _, value in depth)
    lag = scraped["search"]["protomesh_search_indexer_lag_sequences"]
    assert len(lag) == 1
    assert lag[0][1] >= 0
    assert total(scraped["cost"], "protomesh_reservations_outstanding") >= 0
    assert "protomesh_reservations_outstanding" in scraped["cost"]


async def test_domain_counters_follow_a_document_searches_and_a_task(cluster: Cluster) -> None:
    tenant = "metrics-" + uuid.uuid4().hex[:8]
    token = cluster.token(tenant, user="dev")
    before = await scrape_all(cluster)

    async with cluster.channel("document") as channel:
        await doc_grpc.DocumentServiceStub(channel).CreateDocument(
            doc_pb.CreateDocumentRequest(
                document=doc_pb.Document(
                    title="Parking", content="Visitors park in the blue garage on level two."
                )
            ),
            metadata=bearer(token),
        )
    await wait_until_searchable(cluster, tenant, "blue garage")
    async with cluster.channel("search") as channel:
        stub = search_grpc.SearchServiceStub(channel)
        await stub.Search(
            search_pb.SearchRequest(query="where to park", mode=search_pb.SEARCH_MODE_HYBRID),
            metadata=bearer(token),
        )
        # A tenant with no documents has no embeddings: vector mode degrades to keyword.
        await stub.Search(
            search_pb.SearchRequest(query="anything", mode=search_pb.SEARCH_MODE_VECTOR),
            metadata=bearer(cluster.token("metrics-empty-" + uuid.uuid4().hex[:8])),
        )
    question = task_pb.Task(type="rag.answer")
    question.input.update({"question": "Where do visitors park?", "top_k": 3})
    assert await run_task(cluster, token, question) == task_pb.TASK_STATE_COMPLETED
    after = await scrape_all(cluster)

    def grew(process: str, name: str, **labels: str) -> float:
        return total(after[process], name, **labels) - total(before[process], name, **labels)

    assert grew("document", "protomesh_rpc_requests_total", method="CreateDocument", code="OK") >= 1
    assert grew("search", "protomesh_search_queries_total", mode="hybrid") >= 1
    assert grew("search", "protomesh_search_queries_total", mode="vector", ran="keyword") >= 1
    assert grew("search", "protomesh_search_degraded_total", reason="no_embeddings") >= 1
    assert grew("search", "protomesh_embedding_batch_duration_seconds_count", outcome="ok") >= 1
    assert grew("search", "protomesh_embedding_texts_total") >= 1
    assert grew("task", "protomesh_rpc_requests_total", method="CreateTask", code="OK") >= 1
    assert (
        grew(
            "task-worker",
            "protomesh_task_duration_seconds_count",
            type="rag.answer",
            outcome="completed",
        )
        >= 1
    )
    assert (
        grew("cost", "protomesh_model_tokens_total", model="extractive-v2", direction="input") > 0
    )
    assert any(
        labels["model"] == "extractive-v2"  # priced at 0: present, not necessarily grown
        for labels, _ in after["cost"]["protomesh_model_cost_micros_total"]
    )
    # Chunks are embedded in the background after they became keyword-searchable.
    for _ in range(300):
        if grew("search", "protomesh_search_chunks_embedded_total") >= 1:
            break
        await asyncio.sleep(0.1)
        after["search"] = await scrape(cluster, "search")
    assert grew("search", "protomesh_search_chunks_embedded_total") >= 1


async def test_status_reports_every_component_as_json(cluster: Cluster) -> None:
    tenant = "status-" + uuid.uuid4().hex[:8]

    done = await asyncio.to_thread(protomesh, cluster, "status", "--json", "--tenant", tenant)

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["healthy"] is True
    names = {c["name"]: c for c in report["components"]}
    assert set(names) == {"document", "search", "task", "cost", "gateway"}
    assert all(c["healthy"] and c["version"] for c in names.values()), names
    assert report["index_lag"] >= 0
    assert set(report["queue_depth"]) == {"submitted", "working", "input_required", "auth_required"}
    assert report["spend_today"].endswith("USD")
    assert report["problems"] == []


async def test_status_exits_non_zero_when_a_component_is_down(cluster: Cluster) -> None:
    with socket.socket() as probe:  # a port nothing listens on stands in for a dead cost service
        probe.bind(("127.0.0.1", 0))
        environ = {**cli_environ(cluster), "PROTOMESH_COST_PORT": str(probe.getsockname()[1])}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli.main", "status", "--json"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["healthy"] is False
    names = {c["name"]: c for c in report["components"]}
    assert names["cost"]["healthy"] is False
    assert names["document"]["healthy"] is True
    assert any(problem.startswith("spend:") for problem in report["problems"])

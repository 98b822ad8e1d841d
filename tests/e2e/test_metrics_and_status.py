"""Every process's Prometheus endpoint carries the RED and domain metrics after real
traffic, and `protomesh status` reports health, versions, index lag, queue depth
and spend."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from tests.cluster import Cluster
from tests.conftest import bearer
from tests.e2e.test_newcomer import protomesh, tenant_with_handbook

Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


async def test_domain_metrics_follow_real_traffic(cluster: Cluster, tmp_path: Path) -> None:
    tenant = await tenant_with_handbook(cluster, tmp_path)
    token = bearer(cluster.token(tenant, user="dev"))
    async with cluster.channel("search") as channel:
        await search_grpc.SearchServiceStub(channel).Search(
            search_pb.SearchRequest(query="vacation days", mode=search_pb.SEARCH_MODE_HYBRID),
            metadata=token,
        )
    asked = await asyncio.to_thread(
        protomesh, cluster, "ask", "How many vacation days?", "--tenant", tenant
    )
    assert asked.returncode == 0, asked.stderr
    async with cluster.channel("task") as channel:
        await task_grpc.TaskServiceStub(channel).CreateTask(
            task_pb.CreateTaskRequest(task=task_pb.Task(type="noop", input={"sleep_seconds": 8})),
            metadata=token,
        )

    ports = {
        name: cluster.settings.metrics_port_of(name)
        for name in ("document", "search", "task", "cost", "task-worker")
    }
    scraped = {name: await scrape(port) for name, port in ports.items()}
    for name, samples in scraped.items():
        assert total(samples, "protomesh_build_info", component=name) == 1, name
    assert (
        total(
            scraped["document"],
            "protomesh_rpc_requests_total",
            method="BatchCreateDocuments",
            code="OK",
        )
        >= 1
    )
    search = scraped["search"]
    assert total(search, "protomesh_search_queries_total", mode="hybrid") >= 1
    assert total(search, "protomesh_embedding_batch_duration_seconds_count", outcome="ok") >= 1
    assert total(search, "protomesh_embedding_texts_total") >= 1
    assert "protomesh_search_indexer_lag_sequences" in search
    assert total(search, "protomesh_search_indexer_lag_sequences") >= 0
    cost = scraped["cost"]
    assert total(cost, "protomesh_model_tokens_total", model="extractive-v1", direction="input") > 0
    worker = scraped["task-worker"]
    assert (
        total(
            worker,
            "protomesh_task_attempt_duration_seconds_count",
            type="rag.answer",
            outcome="completed",
        )
        >= 1
    )
    for _ in range(150):
        worker = await scrape(ports["task-worker"])
        if total(worker, "protomesh_task_queue_depth", type="noop") >= 1:
            break
        await asyncio.sleep(0.1)
    assert total(worker, "protomesh_task_queue_depth", type="noop") >= 1


async def test_status_reports_every_component_as_json(cluster: Cluster) -> None:
    tenant = "status-" + uuid.uuid4().hex[:8]

    done = await asyncio.to_thread(protomesh, cluster, "status", "--json", "--tenant", tenant)

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["healthy"] is True
    names = {c["name"]: c for c in report["components"]}
    assert set(names) == {"document", "search", "task", "cost", "gateway"}
    assert all(c["healthy"] for c in names.values())
    assert all(names[n]["version"] for n in ("document", "search", "task", "cost"))
    assert report["index_lag"] is not None
    assert report["index_lag"] >= 0
    assert report["spend_today"].endswith("USD")
    assert report["problems"] == []

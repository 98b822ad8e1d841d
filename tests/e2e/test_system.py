"""The whole system through real processes: what a newcomer does after `make run`."""

from __future__ import annotations

import grpc
import httpx
import pytest

from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from tests.cluster import Cluster
from tests.conftest import bearer


async def test_every_service_reports_serving_and_exposes_metrics(cluster: Cluster) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    for service in ("document", "search", "task", "cost"):
        async with cluster.channel(service) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        port = cluster.settings.metrics_port_of(service)
        async with httpx.AsyncClient() as client:
            metrics = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert metrics.status_code == 200


async def test_a_document_written_over_grpc_reads_back_for_its_tenant_only(
    cluster: Cluster,
) -> None:
    async with cluster.channel("document") as channel:
        stub = doc_grpc.DocumentServiceStub(channel)
        created = await stub.CreateDocument(
            doc_pb.CreateDocumentRequest(
                document=doc_pb.Document(title="e2e", content="end to end", labels={"k": "v"})
            ),
            metadata=bearer(cluster.token("e2e-a")),
        )
        got = await stub.GetDocument(
            doc_pb.GetDocumentRequest(name=created.name), metadata=bearer(cluster.token("e2e-a"))
        )
        assert got.content == "end to end"
        with pytest.raises(grpc.aio.AioRpcError) as foreign:
            await stub.GetDocument(
                doc_pb.GetDocumentRequest(name=created.name),
                metadata=bearer(cluster.token("e2e-b")),
            )
        assert foreign.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_task_submitted_over_grpc_is_run_by_a_worker_process(cluster: Cluster) -> None:
    token = bearer(cluster.token("e2e-a"))
    async with cluster.channel("task") as channel:
        stub = task_grpc.TaskServiceStub(channel)
        task = await stub.CreateTask(
            task_pb.CreateTaskRequest(task=task_pb.Task(type="noop")), metadata=token
        )
        states = []
        async for item in stub.WatchTask(
            task_pb.WatchTaskRequest(name=task.name), metadata=token, timeout=30
        ):
            if item.HasField("event") and item.event.HasField("status_update"):
                states.append(item.event.status_update.state)
        assert states[-1] == task_pb.TASK_STATE_COMPLETED

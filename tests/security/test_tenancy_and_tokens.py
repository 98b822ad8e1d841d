"""Security from the outside, against the real processes: a second tenant never sees
or changes the first tenant's data, bad tokens are refused on every port, and
hostile strings never cause a server error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from tests.cluster import Cluster
from tests.conftest import bearer
from tests.security.attacks import INJECTIONS, SERVER_ERRORS, attack_tokens

Probe = Callable[[grpc.aio.Channel, Any], Awaitable[Any]]
CHEAP_READS: dict[str, Probe] = {
    "document": lambda ch, md: doc_grpc.DocumentServiceStub(ch).ListDocuments(
        doc_pb.ListDocumentsRequest(), metadata=md
    ),
    "search": lambda ch, md: search_grpc.SearchServiceStub(ch).GetIndexStatus(
        search_pb.GetIndexStatusRequest(), metadata=md
    ),
    "task": lambda ch, md: task_grpc.TaskServiceStub(ch).ListTasks(
        task_pb.ListTasksRequest(), metadata=md
    ),
    "cost": lambda ch, md: cost_grpc.CostServiceStub(ch).ListBudgets(
        cost_pb.ListBudgetsRequest(), metadata=md
    ),
}


@pytest.mark.parametrize("service", sorted(CHEAP_READS))
async def test_bad_tokens_are_refused_on_every_port(cluster: Cluster, service: str) -> None:
    async with cluster.channel(service) as channel:
        for name, token in attack_tokens(cluster).items():
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await CHEAP_READS[service](channel, bearer(token))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, (service, name)
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await CHEAP_READS[service](channel, None)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("service", sorted(CHEAP_READS))
async def test_a_token_without_the_scope_is_permission_denied(
    cluster: Cluster, service: str
) -> None:
    async with cluster.channel(service) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await CHEAP_READS[service](channel, bearer(cluster.token("t", scopes="nothing:here")))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def test_documents_of_one_tenant_are_invisible_to_another(cluster: Cluster) -> None:
    owner, intruder = bearer(cluster.token("sec-owner")), bearer(cluster.token("sec-intruder"))
    async with cluster.channel("document") as channel:
        stub = doc_grpc.DocumentServiceStub(channel)
        doc = await stub.CreateDocument(
            doc_pb.CreateDocumentRequest(
                document=doc_pb.Document(title="secret", content="owner only", labels={"x": "y"}),
                document_id="sec-doc-1",
            ),
            metadata=owner,
        )
        name = doc.name
        assert (
            await _code(stub.GetDocument(doc_pb.GetDocumentRequest(name=name), metadata=intruder))
            == grpc.StatusCode.NOT_FOUND
        )
        batch = await stub.BatchGetDocuments(
            doc_pb.BatchGetDocumentsRequest(names=[name]), metadata=intruder
        )
        assert list(batch.documents) == []
        assert list(batch.missing_names) == [name]
        listed = await stub.ListDocuments(
            doc_pb.ListDocumentsRequest(filter='labels.x = "y"'), metadata=intruder
        )
        assert list(listed.documents) == []
        update = doc_pb.UpdateDocumentRequest(document=doc_pb.Document(name=name, title="pwned"))
        update.update_mask.paths.append("title")
        assert (
            await _code(stub.UpdateDocument(update, metadata=intruder)) == grpc.StatusCode.NOT_FOUND
        )
        assert (
            await _code(
                stub.DeleteDocument(doc_pb.DeleteDocumentRequest(name=name), metadata=intruder)
            )
            == grpc.StatusCode.NOT_FOUND
        )
        # The intruder's change feed carries none of the owner's changes.
        seen: list[str] = []

        async def read_feed() -> None:
            async for item in stub.WatchChanges(doc_pb.WatchChangesRequest(), metadata=intruder):
                if item.HasField("change"):
                    seen.append(item.change.document_name)

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(read_feed(), 1.5)
        assert name not in seen
        # Asking for every tenant's feed without the internal scope is refused.
        all_feed = stub.WatchChanges(
            doc_pb.WatchChangesRequest(all_tenants=True), metadata=intruder
        )
        assert await _code(_drain(all_feed)) == grpc.StatusCode.PERMISSION_DENIED
        # The page token of one tenant is useless to the other.
        page = await stub.ListDocuments(doc_pb.ListDocumentsRequest(page_size=1), metadata=owner)
        if page.next_page_token:
            reused = doc_pb.ListDocumentsRequest(page_size=1, page_token=page.next_page_token)
            assert (
                await _code(stub.ListDocuments(reused, metadata=intruder))
                == grpc.StatusCode.INVALID_ARGUMENT
            )
        assert (
            await stub.GetDocument(doc_pb.GetDocumentRequest(name=name), metadata=owner)
        ).title == "secret"


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def test_tasks_of_one_tenant_are_invisible_to_another(cluster: Cluster) -> None:
    owner, intruder = bearer(cluster.token("sec-owner")), bearer(cluster.token("sec-intruder"))
    async with cluster.channel("task") as channel:
        stub = task_grpc.TaskServiceStub(channel)
        task = await stub.CreateTask(
            task_pb.CreateTaskRequest(task=task_pb.Task(type="noop", context_id="sec")),
            metadata=owner,
        )
        name = task.name
        assert (
            await _code(stub.GetTask(task_pb.GetTaskRequest(name=name), metadata=intruder))
            == grpc.StatusCode.NOT_FOUND
        )
        listed = await stub.ListTasks(
            task_pb.ListTasksRequest(filter='context_id = "sec"'), metadata=intruder
        )
        assert list(listed.tasks) == []
        for call in (
            stub.CancelTask(task_pb.CancelTaskRequest(name=name), metadata=intruder),
            stub.DeleteTask(task_pb.DeleteTaskRequest(name=name), metadata=intruder),
            stub.RetryTask(task_pb.RetryTaskRequest(name=name), metadata=intruder),
            stub.SendTaskInput(
                task_pb.SendTaskInputRequest(name=name, input={}), metadata=intruder
            ),
            _drain(stub.WatchTask(task_pb.WatchTaskRequest(name=name), metadata=intruder)),
        ):
            assert await _code(call) == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("hostile", INJECTIONS)
async def test_hostile_strings_never_cause_server_errors(cluster: Cluster, hostile: str) -> None:
    token = bearer(cluster.token("sec-hostile"))
    async with cluster.channel("document") as docs, cluster.channel("task") as tasks:
        doc_stub = doc_grpc.DocumentServiceStub(docs)
        task_stub = task_grpc.TaskServiceStub(tasks)
        calls = [
            doc_stub.CreateDocument(
                doc_pb.CreateDocumentRequest(
                    document=doc_pb.Document(
                        title=hostile, content=hostile, source_uri=hostile, labels={"k": hostile}
                    ),
                    request_id=hostile,
                ),
                metadata=token,
            ),
            doc_stub.ListDocuments(doc_pb.ListDocumentsRequest(filter=hostile), metadata=token),
            doc_stub.ListDocuments(doc_pb.ListDocumentsRequest(order_by=hostile), metadata=token),
            doc_stub.ListDocuments(doc_pb.ListDocumentsRequest(page_token=hostile), metadata=token),
            doc_stub.GetDocument(
                doc_pb.GetDocumentRequest(name=f"documents/{hostile}"), metadata=token
            ),
            task_stub.ListTasks(task_pb.ListTasksRequest(filter=hostile), metadata=token),
            task_stub.CreateTask(
                task_pb.CreateTaskRequest(task=task_pb.Task(type=hostile), request_id=hostile),
                metadata=token,
            ),
        ]
        for call in calls:
            assert await _code(call) not in SERVER_ERRORS

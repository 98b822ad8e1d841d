"""A2A v1.0 through the official a2a-sdk client against the whole system: the
agent card, streaming and blocking sends, history, listing, cancel, subscribe,
and tenant isolation."""

from __future__ import annotations

import asyncio
import importlib.metadata
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.client.client import Client
from a2a.types import a2a_pb2 as a2a
from a2a.utils import errors
from google.protobuf import json_format

from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from tests.cluster import Cluster
from tests.conftest import bearer

LAMP = "The lighthouse lamp is lit at dusk and trimmed every four hours by the keeper."


@asynccontextmanager
async def agent(
    cluster: Cluster,
    tenant: str,
    streaming: bool = True,
    binding: str | None = "HTTP+JSON",
    paths: list[str] | None = None,
) -> AsyncIterator[Client]:
    """The official client over `binding` (None: the SDK's default); the path of
    every request it makes is appended to `paths`."""

    async def record(request: httpx.Request) -> None:
        if paths is not None:
            paths.append(request.url.path)

    http = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {cluster.token(tenant)}"},
        timeout=60,
        event_hooks={"request": [record]},
    )
    config = ClientConfig(
        httpx_client=http,
        streaming=streaming,
        supported_protocol_bindings=[binding] if binding else [],
    )
    client = await create_client(cluster.gateway, config)
    try:
        yield client
    finally:
        await client.close()
        await http.aclose()


async def tenant_with_lamp(cluster: Cluster) -> str:
    tenant = "a2a-" + uuid.uuid4().hex[:8]
    token = bearer(cluster.token(tenant))
    async with cluster.channel("document") as channel:
        await doc_grpc.DocumentServiceStub(channel).CreateDocument(
            doc_pb.CreateDocumentRequest(
                document=doc_pb.Document(title="Lighthouse", content=LAMP)
            ),
            metadata=token,
        )
    async with cluster.channel("search") as channel:
        stub = search_grpc.SearchServiceStub(channel)
        for _ in range(200):
            found = await stub.Search(
                search_pb.SearchRequest(
                    query="lighthouse lamp", mode=search_pb.SEARCH_MODE_KEYWORD
                ),
                metadata=token,
            )
            if found.results:
                return tenant
            await asyncio.sleep(0.1)
    raise AssertionError("the lighthouse document was never indexed")


def message(text: str, **data: object) -> a2a.SendMessageRequest:
    parts = [a2a.Part(text=text)]
    if data:
        value = json_format.ParseDict(data, a2a.Part().data)
        parts.append(a2a.Part(data=value))
    return a2a.SendMessageRequest(
        message=a2a.Message(message_id=uuid.uuid4().hex, role=a2a.ROLE_USER, parts=parts)
    )


async def test_the_agent_card_describes_skills_security_and_both_bindings(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway) as http:
        response = await http.get("/.well-known/agent-card.json")

    assert response.status_code == 200
    card = response.json()
    assert {skill["id"] for skill in card["skills"]} == {"rag.answer", "research"}
    assert card["supportedInterfaces"] == [
        {"url": f"{cluster.gateway}/a2a", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
        {
            "url": f"{cluster.gateway}/a2a/jsonrpc",
            "protocolBinding": "JSONRPC",
            "protocolVersion": "1.0",
        },
        {
            "url": f"{cluster.gateway}/a2a/jsonrpc",
            "protocolBinding": "JSONRPC",
            "protocolVersion": "0.3",
        },
        {"url": f"{cluster.gateway}/a2a", "protocolBinding": "HTTP+JSON", "protocolVersion": "0.3"},
    ]
    # A2A 0.3's fields, for 0.3 clients: JSON-RPC preferred, HTTP+JSON besides.
    assert card["url"] == f"{cluster.gateway}/a2a/jsonrpc"
    assert card["preferredTransport"] == "JSONRPC"
    assert card["additionalInterfaces"] == [
        {"url": f"{cluster.gateway}/a2a", "transport": "HTTP+JSON"}
    ]
    assert card["version"] == importlib.metadata.version("protomesh")
    assert card["capabilities"]["streaming"] is True
    assert card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"


async def test_a_streamed_message_runs_rag_answer_to_a_cited_artifact(cluster: Cluster) -> None:
    tenant = await tenant_with_lamp(cluster)

    async with agent(cluster, tenant) as client:
        events = [e async for e in client.send_message(message("When is the lighthouse lamp lit?"))]

    first = events[0]
    assert first.HasField("task")
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert states[-1] == a2a.TASK_STATE_COMPLETED
    artifacts = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
    assert artifacts, events
    texts = [p.text for a in artifacts for p in a.parts if p.WhichOneof("content") == "text"]
    data = [
        json_format.MessageToDict(p.data)
        for a in artifacts
        for p in a.parts
        if p.WhichOneof("content") == "data"
    ]
    assert any("dusk" in text for text in texts), texts
    assert any(d.get("kind") == "citation" for d in data), data


async def test_blocking_send_get_with_history_list_and_subscribe(cluster: Cluster) -> None:
    tenant = await tenant_with_lamp(cluster)

    async with agent(cluster, tenant, streaming=False) as client:
        (reply,) = [e async for e in client.send_message(message("How often is the lamp trimmed?"))]
        task = reply.task
        got = await client.get_task(a2a.GetTaskRequest(id=task.id, history_length=10))
        listed = await client.list_tasks(a2a.ListTasksRequest(page_size=10, include_artifacts=True))
    async with agent(cluster, tenant) as streaming:
        replay = [e async for e in streaming.subscribe(a2a.SubscribeToTaskRequest(id=task.id))]

    assert task.status.state == a2a.TASK_STATE_COMPLETED
    assert task.artifacts
    assert got.history[0].role == a2a.ROLE_USER
    assert got.history[0].parts[0].text == "How often is the lamp trimmed?"
    assert task.id in [t.id for t in listed.tasks]
    assert replay[0].task.id == task.id
    assert replay[0].task.status.state == a2a.TASK_STATE_COMPLETED


async def test_return_immediately_then_cancel_a_task_waiting_for_input(cluster: Cluster) -> None:
    tenant = "a2a-cancel-" + uuid.uuid4().hex[:8]
    request = message("lighthouse maintenance", confirm_plan=True)
    request.metadata.update({"skill": "research"})
    request.configuration.return_immediately = True

    async with agent(cluster, tenant, streaming=False) as client:
        (reply,) = [e async for e in client.send_message(request)]
        task_id = reply.task.id
        for _ in range(200):
            task = await client.get_task(a2a.GetTaskRequest(id=task_id))
            if task.status.state == a2a.TASK_STATE_INPUT_REQUIRED:
                break
            await asyncio.sleep(0.1)
        canceled = await client.cancel_task(a2a.CancelTaskRequest(id=task_id))
        with pytest.raises(errors.TaskNotCancelableError):
            await client.cancel_task(a2a.CancelTaskRequest(id=task_id))

    assert reply.task.status.state in (a2a.TASK_STATE_SUBMITTED, a2a.TASK_STATE_WORKING)
    assert task.status.state == a2a.TASK_STATE_INPUT_REQUIRED
    assert canceled.status.state == a2a.TASK_STATE_CANCELED


async def test_another_tenant_cannot_see_or_touch_the_tasks(cluster: Cluster) -> None:
    owner = "a2a-owner-" + uuid.uuid4().hex[:8]
    request = message("anything at all")
    request.configuration.return_immediately = True
    async with agent(cluster, owner, streaming=False) as client:
        (reply,) = [e async for e in client.send_message(request)]
    task_id = reply.task.id

    async with agent(cluster, "a2a-intruder-" + uuid.uuid4().hex[:8]) as intruder:
        listed = await intruder.list_tasks(a2a.ListTasksRequest(page_size=50))
        with pytest.raises(errors.TaskNotFoundError):
            await intruder.get_task(a2a.GetTaskRequest(id=task_id))
        with pytest.raises(errors.TaskNotFoundError):
            await intruder.cancel_task(a2a.CancelTaskRequest(id=task_id))
        with pytest.raises(errors.TaskNotFoundError):
            [e async for e in intruder.subscribe(a2a.SubscribeToTaskRequest(id=task_id))]

    assert task_id not in [t.id for t in listed.tasks]


async def test_bad_requests_are_4xx_and_no_token_is_401(cluster: Cluster) -> None:
    token = {"Authorization": f"Bearer {cluster.token('a2a-bad')}", "A2A-Version": "1.0"}
    async with httpx.AsyncClient(base_url=cluster.gateway) as http:
        anonymous = await http.get("/a2a/tasks")
        empty = await http.post(
            "/a2a/message:send",
            json={"message": {"messageId": "m1", "role": "ROLE_USER", "parts": []}},
            headers=token,
        )
        unknown_skill = await http.post(
            "/a2a/message:send",
            json={
                "message": {"messageId": "m2", "role": "ROLE_USER", "parts": [{"text": "hi"}]},
                "metadata": {"skill": "astrology"},
            },
            headers=token,
        )
        missing = await http.get("/a2a/tasks/00000000-0000-0000-0000-000000000000", headers=token)
        forged = await http.get(
            "/a2a/tasks", headers={"Authorization": "Bearer forged", "A2A-Version": "1.0"}
        )

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert empty.status_code == 400, empty.text
    assert unknown_skill.status_code == 400, unknown_skill.text
    assert "astrology" in unknown_skill.text
    assert missing.status_code == 404, missing.text
    assert forged.status_code == 401, forged.text
    assert forged.headers["www-authenticate"].startswith("Bearer")

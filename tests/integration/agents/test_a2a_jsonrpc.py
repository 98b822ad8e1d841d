"""A2A's JSON-RPC binding at `/a2a/jsonrpc` through the official a2a-sdk client
against the whole system (send, stream, get, list, cancel, subscribe, tenant
isolation, errors), A2A 0.3 clients reading the card's 0.3 fields, and
ListTasks' `totalSize` over both bindings."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.client.errors import A2AClientError
from a2a.compat.v0_3 import types as types_v03
from a2a.compat.v0_3.conversions import to_core_agent_card
from a2a.server.context import ServerCallContext
from a2a.types import a2a_pb2 as a2a
from a2a.utils import errors
from google.protobuf import json_format

from gateway.a2a import TASK_SERVICE, TaskServiceAgent
from gateway.backends import Backends
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from tests.cluster import Cluster
from tests.conftest import bearer
from tests.integration.agents.test_a2a import agent, message, tenant_with_lamp

JSONRPC = "/a2a/jsonrpc"
CARD = "/.well-known/agent-card.json"


def texts_of(task: a2a.Task) -> list[str]:
    return [p.text for a in task.artifacts for p in a.parts if p.WhichOneof("content") == "text"]


async def test_the_official_client_over_jsonrpc_sends_gets_lists_and_cancels(
    cluster: Cluster,
) -> None:
    tenant = await tenant_with_lamp(cluster)
    paths: list[str] = []
    research = message("lighthouse maintenance", confirm_plan=True)
    research.metadata.update({"skill": "research"})
    research.configuration.return_immediately = True

    async with agent(cluster, tenant, streaming=False, binding="JSONRPC", paths=paths) as client:
        (reply,) = [e async for e in client.send_message(message("When is the lamp lit?"))]
        answered = reply.task
        got = await client.get_task(a2a.GetTaskRequest(id=answered.id, history_length=10))
        listed = await client.list_tasks(a2a.ListTasksRequest(page_size=10, include_artifacts=True))
        (waiting,) = [e async for e in client.send_message(research)]
        for _ in range(200):
            task = await client.get_task(a2a.GetTaskRequest(id=waiting.task.id))
            if task.status.state == a2a.TASK_STATE_INPUT_REQUIRED:
                break
            await asyncio.sleep(0.1)
        canceled = await client.cancel_task(a2a.CancelTaskRequest(id=waiting.task.id))
        with pytest.raises(errors.TaskNotCancelableError):
            await client.cancel_task(a2a.CancelTaskRequest(id=waiting.task.id))

    assert set(paths) == {CARD, JSONRPC}, paths
    assert answered.status.state == a2a.TASK_STATE_COMPLETED
    assert any("dusk" in text for text in texts_of(answered)), answered
    assert got.history[0].role == a2a.ROLE_USER
    assert got.history[0].parts[0].text == "When is the lamp lit?"
    assert answered.id in [t.id for t in listed.tasks]
    assert listed.total_size == len(listed.tasks) == 1
    assert task.status.state == a2a.TASK_STATE_INPUT_REQUIRED
    assert canceled.status.state == a2a.TASK_STATE_CANCELED


async def test_the_sdks_default_client_streams_and_resubscribes_over_jsonrpc(
    cluster: Cluster,
) -> None:
    tenant = await tenant_with_lamp(cluster)
    paths: list[str] = []

    async with agent(cluster, tenant, binding=None, paths=paths) as client:
        events = [e async for e in client.send_message(message("How often is it trimmed?"))]
        task_id = events[0].task.id
        replay = [e async for e in client.subscribe(a2a.SubscribeToTaskRequest(id=task_id))]

    assert set(paths) == {CARD, JSONRPC}, paths
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert states[-1] == a2a.TASK_STATE_COMPLETED
    artifacts = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
    texts = [p.text for a in artifacts for p in a.parts if p.WhichOneof("content") == "text"]
    assert any("four hours" in text for text in texts), texts
    assert replay[0].task.id == task_id
    assert replay[0].task.status.state == a2a.TASK_STATE_COMPLETED


async def test_another_tenant_cannot_see_or_touch_the_tasks_over_jsonrpc(
    cluster: Cluster,
) -> None:
    owner = "a2a-rpc-owner-" + uuid.uuid4().hex[:8]
    request = message("anything at all")
    request.configuration.return_immediately = True
    async with agent(cluster, owner, streaming=False, binding="JSONRPC") as client:
        (reply,) = [e async for e in client.send_message(request)]
    task_id = reply.task.id

    intruder = "a2a-rpc-intruder-" + uuid.uuid4().hex[:8]
    async with agent(cluster, intruder, binding="JSONRPC") as client:
        listed = await client.list_tasks(a2a.ListTasksRequest(page_size=50))
        with pytest.raises(errors.TaskNotFoundError):
            await client.get_task(a2a.GetTaskRequest(id=task_id))
        with pytest.raises(errors.TaskNotFoundError):
            await client.cancel_task(a2a.CancelTaskRequest(id=task_id))
        with pytest.raises(errors.TaskNotFoundError):
            [e async for e in client.subscribe(a2a.SubscribeToTaskRequest(id=task_id))]
        follow_up = message("pwned")
        follow_up.message.task_id = task_id
        with pytest.raises(errors.TaskNotFoundError):
            [e async for e in client.send_message(follow_up)]
    headers = {"Authorization": f"Bearer {cluster.token(intruder)}"}
    async with httpx.AsyncClient(base_url=cluster.gateway, headers=headers) as http:
        legacy = await http.post(JSONRPC, json=rpc("tasks/get", {"id": task_id}))
        never_id = str(uuid.uuid4())
        never = await http.post(JSONRPC, json=rpc("tasks/get", {"id": never_id}))
        legacy_rest = await http.get(f"/a2a/v1/tasks/{task_id}")
        never_rest = await http.get(f"/a2a/v1/tasks/{never_id}")

    assert task_id not in [t.id for t in listed.tasks]
    assert listed.total_size == 0
    assert legacy.json()["error"]["code"] == -32001, legacy.text
    # The same answer as for a task that never existed.
    assert legacy.text.replace(task_id, "<id>") == never.text.replace(never_id, "<id>")
    assert legacy_rest.status_code == 404, legacy_rest.text
    assert legacy_rest.text.replace(task_id, "<id>") == never_rest.text.replace(never_id, "<id>")


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_an_a2a_0_3_client_finds_its_binding_on_the_card_and_works(
    cluster: Cluster, binding: str
) -> None:
    tenant = await tenant_with_lamp(cluster)
    paths: list[str] = []

    async def record(request: httpx.Request) -> None:
        paths.append(request.url.path)

    async with httpx.AsyncClient(base_url=cluster.gateway) as anonymous:
        served = (await anonymous.get(CARD)).json()
    # What a 0.3 client reads: url, preferredTransport, additionalInterfaces.
    legacy = types_v03.AgentCard.model_validate(served)
    card = to_core_agent_card(legacy)
    http = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {cluster.token(tenant)}"},
        timeout=60,
        event_hooks={"request": [record]},
    )
    config = ClientConfig(httpx_client=http, streaming=False, supported_protocol_bindings=[binding])
    client = await create_client(card, config)
    try:
        (reply,) = [e async for e in client.send_message(message("When is the lamp lit?"))]
        got = await client.get_task(a2a.GetTaskRequest(id=reply.task.id, history_length=5))
        # Errors: JSON-RPC 0.3 has A2A's codes; HTTP+JSON answers them in the 1.0
        # shape (google.rpc.Status), which the SDK's 0.3 REST client reports by status.
        with pytest.raises((errors.TaskNotCancelableError, A2AClientError)) as not_cancelable:
            await client.cancel_task(a2a.CancelTaskRequest(id=reply.task.id))
        with pytest.raises((errors.TaskNotFoundError, errors.MethodNotFoundError)) as not_found:
            await client.get_task(a2a.GetTaskRequest(id="00000000-0000-0000-0000-000000000000"))
    finally:
        await client.close()
        await http.aclose()

    assert legacy.protocol_version == "0.3"
    assert (legacy.url, legacy.preferred_transport) == (f"{cluster.gateway}{JSONRPC}", "JSONRPC")
    assert [(i.url, i.transport) for i in legacy.additional_interfaces or []] == [
        (f"{cluster.gateway}/a2a", "HTTP+JSON")
    ]
    if binding == "JSONRPC":
        assert set(paths) == {JSONRPC}, paths
        assert isinstance(not_cancelable.value, errors.TaskNotCancelableError)
        assert isinstance(not_found.value, errors.TaskNotFoundError)
    else:
        assert {path.split("/")[2] for path in paths} == {"v1"}, paths
        assert "HTTP Error 400" in str(not_cancelable.value)
        assert "tasks/00000000" in str(not_found.value)
    assert reply.task.status.state == a2a.TASK_STATE_COMPLETED
    assert any("dusk" in text for text in texts_of(reply.task)), reply.task
    assert got.history[0].parts[0].text == "When is the lamp lit?"


def rpc(method: str, params: dict[str, object], ident: int = 1) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}


async def test_jsonrpc_errors_are_precise_and_tokens_are_checked(cluster: Cluster) -> None:
    headers = {"Authorization": f"Bearer {cluster.token('a2a-rpc-bad')}", "A2A-Version": "1.0"}
    missing_task = rpc("GetTask", {"id": "00000000-0000-0000-0000-000000000000"})
    async with httpx.AsyncClient(base_url=cluster.gateway) as http:
        anonymous = await http.post(JSONRPC, json=rpc("ListTasks", {}))
        forged = await http.post(
            JSONRPC,
            json=rpc("ListTasks", {}),
            headers={"Authorization": "Bearer forged", "A2A-Version": "1.0"},
        )
        forged_stream = await http.post(
            JSONRPC,
            json=rpc(
                "SendStreamingMessage",
                {"message": {"messageId": "m0", "role": "ROLE_USER", "parts": [{"text": "hi"}]}},
            ),
            headers={"Authorization": "Bearer forged", "A2A-Version": "1.0"},
        )
        forged_0_3 = await http.post(
            JSONRPC,
            json=rpc("tasks/get", {"id": "00000000-0000-0000-0000-000000000000"}),
            headers={"Authorization": "Bearer forged"},
        )
        missing = await http.post(JSONRPC, json=missing_task, headers=headers)
        unknown_method = await http.post(JSONRPC, json=rpc("tasks/launch", {}), headers=headers)
        empty_message = await http.post(
            JSONRPC,
            json=rpc(
                "SendMessage", {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": []}}
            ),
            headers=headers,
        )
        bad_page = await http.post(
            JSONRPC, json=rpc("ListTasks", {"pageSize": 500}), headers=headers
        )
        no_version = await http.post(
            JSONRPC, json=missing_task, headers={"Authorization": headers["Authorization"]}
        )
        not_json = await http.post(
            JSONRPC, content=b"{not json", headers={**headers, "Content-Type": "application/json"}
        )
        get = await http.get(JSONRPC, headers=headers)

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert forged.status_code == 401, forged.text
    assert forged.headers["www-authenticate"].startswith("Bearer")
    assert forged.json()["error"]["code"] == -32040
    assert forged.json()["id"] == 1
    assert forged_stream.status_code == 401, forged_stream.text
    assert forged_stream.json()["error"]["code"] == -32040
    assert forged_0_3.status_code == 401, forged_0_3.text
    assert forged_0_3.headers["www-authenticate"].startswith("Bearer")
    assert forged_0_3.json()["error"]["code"] == -32603  # 0.3 has no code for it

    def error_of(response: httpx.Response) -> dict[str, object]:
        assert response.status_code == 200, response.text
        body = response.json()
        assert "result" not in body, body
        error: dict[str, object] = body["error"]
        return error

    assert error_of(missing)["code"] == -32001
    assert error_of(unknown_method)["code"] == -32601
    empty = error_of(empty_message)
    assert empty["code"] == -32602
    assert "message.parts" in str(empty["message"])
    assert error_of(bad_page)["code"] == -32602
    assert "pageSize" in str(error_of(bad_page)["message"])
    assert error_of(no_version)["code"] == -32009
    assert error_of(not_json)["code"] == -32700
    assert get.status_code == 405


async def create_tasks(cluster: Cluster, tenant: str, context_id: str, count: int) -> set[str]:
    """`count` research tasks that stop for the plan's review (no worker runs long)."""
    ids: set[str] = set()
    async with cluster.channel("task") as channel:
        stub = task_grpc.TaskServiceStub(channel)
        for i in range(count):
            task = task_pb.Task(type="research", context_id=context_id)
            task.input.update({"topic": f"topic {i}", "confirm_plan": True})
            created = await stub.CreateTask(
                task_pb.CreateTaskRequest(task=task), metadata=bearer(cluster.token(tenant))
            )
            ids.add(created.name.removeprefix("tasks/"))
    return ids


@pytest.mark.parametrize("binding", ["HTTP+JSON", "JSONRPC"])
async def test_list_total_size_counts_every_page_not_the_page(
    cluster: Cluster, binding: str
) -> None:
    tenant = "a2a-total-" + uuid.uuid4().hex[:8]
    wanted = await create_tasks(cluster, tenant, "ctx-wanted", 5)
    await create_tasks(cluster, tenant, "ctx-other", 2)

    pages: list[a2a.ListTasksResponse] = []
    async with agent(cluster, tenant, streaming=False, binding=binding) as client:
        token = ""
        while True:
            page = await client.list_tasks(
                a2a.ListTasksRequest(context_id="ctx-wanted", page_size=2, page_token=token)
            )
            pages.append(page)
            token = page.next_page_token
            if not token:
                break
        everything = await client.list_tasks(a2a.ListTasksRequest(page_size=100))

    assert [len(page.tasks) for page in pages] == [2, 2, 1]
    assert [page.total_size for page in pages] == [5, 5, 5]
    assert {task.id for page in pages for task in page.tasks} == wanted
    assert everything.total_size == len(everything.tasks) == 7


async def test_the_count_pages_through_every_matching_task(cluster: Cluster) -> None:
    """The handler itself, counting two tasks a call (TaskService's own pages)."""
    tenant = "a2a-count-" + uuid.uuid4().hex[:8]
    await create_tasks(cluster, tenant, "ctx-count", 5)
    backends = Backends({TASK_SERVICE: cluster.settings.address_of("task")})
    handler = TaskServiceAgent(backends, count_page_size=2)
    context = ServerCallContext(
        state={"headers": {"authorization": f"Bearer {cluster.token(tenant)}"}}
    )
    try:
        first = await handler.on_list_tasks(
            a2a.ListTasksRequest(context_id="ctx-count", page_size=3), context
        )
        last = await handler.on_list_tasks(
            a2a.ListTasksRequest(
                context_id="ctx-count", page_size=3, page_token=first.next_page_token
            ),
            context,
        )
        other = await handler.on_list_tasks(
            a2a.ListTasksRequest(context_id="ctx-none", page_size=3), context
        )
    finally:
        await backends.close()

    assert (len(first.tasks), first.total_size) == (3, 5)
    assert (len(last.tasks), last.total_size, last.next_page_token) == (2, 5, "")
    assert (len(other.tasks), other.total_size) == (0, 0)
    assert json_format.MessageToDict(first)["totalSize"] == 5

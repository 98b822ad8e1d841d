"""TaskService RPCs: submit (idempotent, rejected), get, list, cancel, input,
retry, delete, and two-tenant isolation."""

from __future__ import annotations

import uuid

import grpc
import pytest

from protomesh.task.v1 import task_service_pb2 as pb
from services.task import states
from tests.integration.task.conftest import Client


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def test_create_returns_a_submitted_task_at_once(client_for) -> None:
    client: Client = client_for(_tenant())
    task = await client.create("noop", {"sleep_seconds": 0}, priority=3, context_id="ctx-1")
    assert task.name.startswith("tasks/")
    assert task.status.state == pb.TASK_STATE_SUBMITTED
    assert task.priority == 3
    assert task.context_id == "ctx-1"
    assert task.max_attempts == 3
    assert task.last_event_seq == 1
    fetched = await client.get(task.name, history_length=10)
    assert [e.status_update.state for e in fetched.history] == [pb.TASK_STATE_SUBMITTED]


async def test_create_with_the_same_request_id_and_payload_returns_the_original(client_for) -> None:
    client = client_for(_tenant())
    first = await client.create("noop", {"x": 1}, request_id="req-1")
    again = await client.create("noop", {"x": 1}, request_id="req-1")
    assert again.name == first.name
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await client.create("noop", {"x": 2}, request_id="req-1")
    assert failure.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_concurrent_creates_with_one_request_id_make_one_task(client_for) -> None:
    import asyncio

    client = client_for(_tenant())
    made = await asyncio.gather(*(client.create("noop", {}, request_id="same") for _ in range(8)))
    assert len({t.name for t in made}) == 1


async def test_request_ids_are_scoped_per_tenant(client_for) -> None:
    a = await client_for(_tenant()).create("noop", {}, request_id="shared")
    b = await client_for(_tenant()).create("noop", {}, request_id="shared")
    assert a.name != b.name


async def test_unknown_type_is_accepted_as_a_rejected_task(client_for) -> None:
    client = client_for(_tenant())
    task = await client.create("no.such.type", {})
    assert task.status.state == pb.TASK_STATE_REJECTED
    assert task.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "unknown task type" in task.error.message
    assert task.HasField("end_time")


async def test_invalid_input_is_rejected_by_its_workflow(client_for) -> None:
    task = await client_for(_tenant()).create("rag.answer", {"top_k": 5})
    assert task.status.state == pb.TASK_STATE_REJECTED
    assert "question is required" in task.status.message


async def test_a_malformed_type_fails_validation(client_for) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await client_for(_tenant()).create("Bad Type!", {})
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cancel_of_a_queued_task_is_immediate_and_idempotent(client_for) -> None:
    client = client_for(_tenant())
    task = await client.create("noop", {}, priority=0)
    canceled = await client.stub.CancelTask(
        pb.CancelTaskRequest(name=task.name, reason="changed my mind"), metadata=client.md
    )
    assert canceled.status.state == pb.TASK_STATE_CANCELED
    assert canceled.status.message == "changed my mind"
    again = await client.stub.CancelTask(pb.CancelTaskRequest(name=task.name), metadata=client.md)
    assert again.status.state == pb.TASK_STATE_CANCELED
    assert again.last_event_seq == canceled.last_event_seq


async def test_cancel_of_another_terminal_task_is_a_failed_precondition(client_for) -> None:
    client = client_for(_tenant())
    task = await client.create("nope", {})  # REJECTED
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await client.stub.CancelTask(pb.CancelTaskRequest(name=task.name), metadata=client.md)
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_input_retry_and_delete_check_the_state(client_for) -> None:
    client = client_for(_tenant())
    task = await client.create("noop", {})
    for call, request in (
        (client.stub.SendTaskInput, pb.SendTaskInputRequest(name=task.name, input={})),
        (client.stub.RetryTask, pb.RetryTaskRequest(name=task.name)),
        (client.stub.DeleteTask, pb.DeleteTaskRequest(name=task.name)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await call(request, metadata=client.md)
        assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_delete_removes_a_terminal_task(client_for) -> None:
    client = client_for(_tenant())
    task = await client.create("nope", {})
    await client.stub.DeleteTask(pb.DeleteTaskRequest(name=task.name), metadata=client.md)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await client.get(task.name)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_filters_and_pages_newest_first(client_for) -> None:
    client = client_for(_tenant())
    made = [await client.create("noop", {}, context_id=f"c{i % 2}") for i in range(5)]
    await client.create("nope", {})
    names: list[str] = []
    token = ""
    while True:
        page = await client.stub.ListTasks(
            pb.ListTasksRequest(page_size=2, page_token=token, filter='type = "noop"'),
            metadata=client.md,
        )
        names.extend(t.name for t in page.tasks)
        token = page.next_page_token
        if not token:
            break
    assert names == [t.name for t in reversed(made)]
    rejected = await client.stub.ListTasks(
        pb.ListTasksRequest(filter="state = TASK_STATE_REJECTED"), metadata=client.md
    )
    assert [t.type for t in rejected.tasks] == ["nope"]
    by_context = await client.stub.ListTasks(
        pb.ListTasksRequest(filter='context_id = "c1" AND create_time > "2000-01-01T00:00:00Z"'),
        metadata=client.md,
    )
    assert len(by_context.tasks) == 2


async def test_list_rejects_a_bad_filter_and_a_foreign_page_token(client_for) -> None:
    client, other = client_for(_tenant()), client_for(_tenant())
    for _ in range(3):
        await client.create("noop", {})
    page = await client.stub.ListTasks(pb.ListTasksRequest(page_size=1), metadata=client.md)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await other.stub.ListTasks(
            pb.ListTasksRequest(page_size=1, page_token=page.next_page_token), metadata=other.md
        )
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await client.stub.ListTasks(pb.ListTasksRequest(filter="owner = 1"), metadata=client.md)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_another_tenant_sees_nothing(client_for) -> None:
    owner, stranger = client_for(_tenant()), client_for(_tenant())
    task = await owner.create("noop", {})
    for call, request in (
        (stranger.stub.GetTask, pb.GetTaskRequest(name=task.name)),
        (stranger.stub.CancelTask, pb.CancelTaskRequest(name=task.name)),
        (stranger.stub.DeleteTask, pb.DeleteTaskRequest(name=task.name)),
        (stranger.stub.RetryTask, pb.RetryTaskRequest(name=task.name)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await call(request, metadata=stranger.md)
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stranger.watch(task.name)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stranger.stub.ListTasks(pb.ListTasksRequest(), metadata=stranger.md)
    assert task.name not in {t.name for t in listed.tasks}


async def test_a_read_only_token_cannot_submit(client_for) -> None:
    client = client_for(_tenant(), scopes="tasks:read")
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await client.create("noop", {})
    assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_database_rejects_an_illegal_transition(client_for, owner_conn) -> None:
    import asyncpg

    task = await client_for(_tenant()).create("nope", {})  # REJECTED, terminal
    with pytest.raises(asyncpg.CheckViolationError):
        await owner_conn.execute(
            "UPDATE task.tasks SET state = $2 WHERE id = $1",
            uuid.UUID(task.name.removeprefix("tasks/")),
            states.WORKING,
        )

"""Workers: claiming, retries with backoff, dead letter, RetryTask, cancellation,
timeouts, input pauses, and fencing of a worker that lost its lease."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from protomesh.task.v1 import task_service_pb2 as pb
from services.task import states
from services.task.execution import TaskContext
from services.task.store import Fenced, Lease, TaskStore
from services.task.workflows import Registry, default_registry
from tests.integration.task.conftest import FAST, Client


def _tenant() -> str:
    return f"w-{uuid.uuid4().hex[:8]}"


def _id(task: pb.Task) -> uuid.UUID:
    return uuid.UUID(task.name.removeprefix("tasks/"))


async def test_a_worker_completes_a_noop_task(client_for, workers) -> None:
    client: Client = client_for(_tenant())
    task = await client.create("noop", {})
    async with workers():
        done = await client.wait(task.name, pb.TASK_STATE_COMPLETED)
    assert done.status.message == "done"
    assert len(done.attempts) == 1
    assert done.attempts[0].HasField("end_time")
    assert done.HasField("start_time")
    assert done.HasField("end_time")


async def test_higher_priority_runs_first_then_older(client_for, workers) -> None:
    client = client_for(_tenant())
    low = await client.create("noop", {}, priority=1)
    high = await client.create("noop", {}, priority=9)
    older_mid = await client.create("noop", {}, priority=5)
    newer_mid = await client.create("noop", {}, priority=5)
    async with workers(dataclasses.replace(FAST, count=1)):
        finished = [
            await client.wait(t.name, pb.TASK_STATE_COMPLETED)
            for t in (low, high, older_mid, newer_mid)
        ]
    order = sorted(finished, key=lambda t: t.start_time.ToDatetime())
    names = [t.name for t in order]
    assert names.index(high.name) < names.index(older_mid.name) < names.index(newer_mid.name)
    assert names.index(newer_mid.name) < names.index(low.name)


async def test_a_failing_attempt_is_retried_with_backoff(client_for, workers) -> None:
    client = client_for(_tenant())
    task = await client.create("noop", {"fail_times": 1})
    async with workers():
        done = await client.wait(task.name, pb.TASK_STATE_COMPLETED)
    assert [a.number for a in done.attempts] == [1, 2]
    assert "planned failure" in done.attempts[0].error.message
    assert not done.attempts[1].HasField("error")


async def test_after_the_last_attempt_the_task_is_failed_with_its_history(
    client_for, workers
) -> None:
    client = client_for(_tenant())
    task = await client.create("noop", {"fail_times": 10})
    async with workers():
        failed = await client.wait(task.name, pb.TASK_STATE_FAILED)
        assert len(failed.attempts) == 3
        assert all("planned failure" in a.error.message for a in failed.attempts)
        assert "failed after 3 attempts" in failed.status.message
        assert failed.error.message
        # RetryTask re-queues the dead letter with a fresh attempt budget.
        retried = await client.stub.RetryTask(
            pb.RetryTaskRequest(name=task.name), metadata=client.md
        )
        assert retried.status.state == pb.TASK_STATE_SUBMITTED
        assert retried.max_attempts == 6
        again = await client.wait(task.name, pb.TASK_STATE_FAILED)
    assert len(again.attempts) == 6


async def test_cancel_reaches_a_running_task_within_a_bounded_time(client_for, workers) -> None:
    client = client_for(_tenant())
    task = await client.create("noop", {"sleep_seconds": 60})
    async with workers():
        running = await client.wait(task.name, pb.TASK_STATE_WORKING)
        while running.status.progress.step != "sleep":
            running = await client.get(task.name)
        started = time.monotonic()
        answer = await client.stub.CancelTask(
            pb.CancelTaskRequest(name=task.name, reason="stop now"), metadata=client.md
        )
        assert answer.status.state == pb.TASK_STATE_WORKING  # the worker ends it
        canceled = await client.wait(task.name, pb.TASK_STATE_CANCELED, within=5)
        assert time.monotonic() - started < 2.0
    assert canceled.status.message == "stop now"


class Slow:
    type = "test.slow"
    timeout_seconds = 0.3
    max_attempts = 2
    scopes: frozenset[str] = frozenset()

    def validate(self, input: Mapping[str, Any]) -> list[str]:
        return []

    async def run(self, ctx: TaskContext) -> str:
        await asyncio.sleep(10)
        return "never"


class AskOnce:
    type = "test.ask"
    timeout_seconds = 5.0
    max_attempts = 1
    scopes: frozenset[str] = frozenset()

    def validate(self, input: Mapping[str, Any]) -> list[str]:
        return []

    async def run(self, ctx: TaskContext) -> str:
        answer = ctx.latest_input()
        if answer is None:
            ctx.need_input("what is your name?")
        return f"hello {answer['name']}"


def _registry() -> Registry:
    registry = default_registry()
    registry.add(Slow())
    registry.add(AskOnce())
    return registry


async def test_a_task_that_exceeds_its_type_timeout_fails_with_deadline_exceeded(
    client_for, workers, tasks
) -> None:
    client = client_for(_tenant())
    async with workers(registry=_registry()) as worker:
        # The API's registry does not know the test type: insert through the store.
        del worker
        task = await _create_direct(client, "test.slow", timeout_seconds=0.3, max_attempts=2)
        failed = await client.wait(task, pb.TASK_STATE_FAILED)
    assert [a.error.code for a in failed.attempts] == [4, 4]
    assert "timed out" in failed.error.message


async def test_input_required_pauses_until_send_task_input(client_for, workers) -> None:
    client = client_for(_tenant())
    async with workers(registry=_registry()):
        name = await _create_direct(client, "test.ask", timeout_seconds=5, max_attempts=1)
        paused = await client.wait(name, pb.TASK_STATE_INPUT_REQUIRED)
        assert paused.status.message == "what is your name?"
        await client.stub.SendTaskInput(
            pb.SendTaskInputRequest(name=name, input={"name": "ada"}), metadata=client.md
        )
        done = await client.wait(name, pb.TASK_STATE_COMPLETED)
    assert done.status.message == "hello ada"


async def _create_direct(client: Client, type_: str, **kw: Any) -> str:
    """Creates a task of a type only the test registry knows."""
    from services.task.store import NewTask

    store: TaskStore = _STORE[0]
    tenant = _tenant_of(client)
    row, _ = await store.create(
        tenant,
        NewTask(
            type=type_,
            input={},
            priority=0,
            context_id="",
            request_id=None,
            request_hash="",
            state=states.SUBMITTED,
            status_message="queued",
            max_attempts=kw["max_attempts"],
            timeout_seconds=kw["timeout_seconds"],
            cost_limit_micros=0,
            submitter="alice",
            submitter_scopes="",
            traceparent="",
            error=None,
        ),
    )
    return f"tasks/{row['id']}"


_STORE: list[TaskStore] = []


@pytest.fixture(autouse=True)
def _remember_store(store: TaskStore) -> None:
    _STORE[:] = [store]


def _tenant_of(client: Client) -> str:
    import jwt

    token = client.md[0][1].removeprefix("Bearer ")
    return str(jwt.decode(token, options={"verify_signature": False})["tenant_id"])


async def test_a_stale_worker_is_fenced_after_its_lease_is_reclaimed(
    client_for, store: TaskStore, owner_conn
) -> None:
    client = client_for(_tenant())
    task = await client.create("noop", {})
    task_id = _id(task)
    # Worker A claims it (possibly with other queued tasks: keep only ours).
    stale: Lease | None = None
    for _ in range(50):
        for row in await store.claim("worker-a", 100, 30.0):
            if row["id"] == task_id:
                stale = Lease(row["id"], row["tenant_id"], "worker-a", row["lease_epoch"])
            else:
                await store.finish(
                    Lease(row["id"], row["tenant_id"], "worker-a", row["lease_epoch"]),
                    states.SUBMITTED,
                    "put back",
                    None,
                    0.0,
                )
        if stale:
            break
    assert stale is not None
    await store.append_event(stale, "log", {"level": "info", "message": "A was here"})
    # A stalls; its lease runs out and the reaper puts the task back; B claims it.
    await owner_conn.execute(
        "UPDATE task.tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        task_id,
    )
    assert await store.reap_expired() >= 1
    fresh: Lease | None = None
    for row in await store.claim("worker-b", 100, 30.0):
        lease = Lease(row["id"], row["tenant_id"], "worker-b", row["lease_epoch"])
        if row["id"] == task_id:
            fresh = lease
        else:
            await store.finish(lease, states.SUBMITTED, "put back", None, 0.0)
    assert fresh is not None
    assert fresh.epoch == stale.epoch + 1
    # Every late write by A is rejected...
    with pytest.raises(Fenced):
        await store.append_event(stale, "log", {"level": "info", "message": "late"})
    with pytest.raises(Fenced):
        await store.heartbeat(stale, 30.0)
    with pytest.raises(Fenced):
        await store.save_checkpoint(stale, {"x": 1})
    with pytest.raises(Fenced):
        await store.put_artifact(stale, {"artifactId": "a", "parts": []}, {}, False)
    with pytest.raises(Fenced):
        await store.finish(stale, states.COMPLETED, "A finished")
    # ...while B's go through, exactly once.
    await store.finish(fresh, states.COMPLETED, "B finished")
    done = await client.get(task.name, history_length=100)
    assert done.status.message == "B finished"
    assert [a.worker_id for a in done.attempts] == ["worker-a", "worker-b"]
    assert "expired" in done.attempts[0].error.message
    completions = [e for e in done.history if e.status_update.state == pb.TASK_STATE_COMPLETED]
    assert len(completions) == 1
    assert [e.log.message for e in done.history if e.HasField("log")] == ["A was here"]
    assert not done.artifacts

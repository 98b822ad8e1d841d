"""WatchTask sends a heartbeat whenever the task has been quiet: after the
snapshot, never before it, carrying the last sequence delivered (so resuming from
it loses nothing); followers (services.task.following) do not pass them on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from functools import partial

import grpc
import pytest

from protomesh.task.v1 import task_service_pb2 as pb
from protomesh.task.v1 import task_service_pb2_grpc as pb_grpc
from services.platform.config import Settings
from services.task import following
from services.task.service import make_spec
from tests.conftest import Mint, bearer, running

HEARTBEAT_SECONDS = 0.1


@pytest.fixture(scope="module")
async def beating(task_settings: Settings) -> AsyncIterator[pb_grpc.TaskServiceStub]:
    """A TaskService whose quiet watches beat every HEARTBEAT_SECONDS."""
    async with running(make_spec(heartbeat_seconds=HEARTBEAT_SECONDS), task_settings) as (
        _,
        channel,
    ):
        yield pb_grpc.TaskServiceStub(channel)


async def take(call: grpc.aio.UnaryStreamCall, count: int) -> list[pb.WatchTaskResponse]:
    return [await asyncio.wait_for(call.read(), 5.0) for _ in range(count)]


async def test_a_quiet_task_beats_after_its_snapshot_and_last_event(
    beating: pb_grpc.TaskServiceStub, mint: Mint
) -> None:
    md = bearer(mint(f"h-{uuid.uuid4().hex[:8]}"))
    task = await beating.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(type="noop")), metadata=md
    )  # no worker runs: it stays SUBMITTED, its log holds one event
    call = beating.WatchTask(pb.WatchTaskRequest(name=task.name), metadata=md)
    items = await take(call, 5)
    call.cancel()
    assert [item.WhichOneof("item") for item in items] == [
        "task",
        "event",
        "heartbeat",
        "heartbeat",
        "heartbeat",
    ]
    assert items[1].event.sequence == 1
    assert {item.heartbeat.head_sequence for item in items[2:]} == {1}
    assert all(item.heartbeat.time.seconds > 0 for item in items[2:])

    # From the head: the snapshot, then heartbeats at once (nothing is newer).
    resumed = beating.WatchTask(pb.WatchTaskRequest(name=task.name, after_seq=1), metadata=md)
    items = await take(resumed, 3)
    resumed.cancel()
    assert [item.WhichOneof("item") for item in items] == ["task", "heartbeat", "heartbeat"]
    assert {item.heartbeat.head_sequence for item in items[1:]} == {1}


async def test_heartbeats_stop_when_the_task_ends(
    beating: pb_grpc.TaskServiceStub, mint: Mint, workers
) -> None:
    md = bearer(mint(f"h-{uuid.uuid4().hex[:8]}"))
    task = await beating.CreateTask(pb.CreateTaskRequest(task=pb.Task(type="noop")), metadata=md)
    call = beating.WatchTask(pb.WatchTaskRequest(name=task.name), metadata=md)
    await take(call, 3)  # snapshot, SUBMITTED, a heartbeat
    async with workers():
        rest: list[pb.WatchTaskResponse] = []
        while (item := await asyncio.wait_for(call.read(), 10.0)) is not grpc.aio.EOF:
            rest.append(item)  # the stream ends after the terminal event
    events = [item.event for item in rest if item.HasField("event")]
    assert events[-1].status_update.state == pb.TASK_STATE_COMPLETED
    assert rest[-1].HasField("event")


async def test_followers_do_not_see_heartbeats(
    beating: pb_grpc.TaskServiceStub, mint: Mint, workers
) -> None:
    md = bearer(mint(f"h-{uuid.uuid4().hex[:8]}"))
    task = await beating.CreateTask(pb.CreateTaskRequest(task=pb.Task(type="noop")), metadata=md)
    seen: list[pb.WatchTaskResponse] = []

    async def follow() -> None:
        async for item in following.watch(partial(beating.WatchTask, metadata=md), task.name):
            seen.append(item)

    follower = asyncio.create_task(follow())
    await asyncio.sleep(HEARTBEAT_SECONDS * 5)  # quiet: heartbeats flow, none reach `seen`
    async with workers():
        await asyncio.wait_for(follower, 10.0)
    assert seen[0].HasField("task")
    assert all(item.HasField("event") for item in seen[1:])
    assert seen[-1].event.status_update.state == pb.TASK_STATE_COMPLETED

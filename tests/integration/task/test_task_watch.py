"""WatchTask: snapshot first, then every event in order, live, ending after the
terminal event; resumable from any sequence with no gaps and no duplicates."""

from __future__ import annotations

import asyncio
import random
import uuid

from protomesh.task.v1 import task_service_pb2 as pb
from tests.integration.task.conftest import Client


def _tenant() -> str:
    return f"v-{uuid.uuid4().hex[:8]}"


async def test_watch_streams_snapshot_then_live_events_until_the_terminal_one(
    client_for, workers
) -> None:
    client: Client = client_for(_tenant())
    task = await client.create("noop", {"sleep_seconds": 0.3, "progress_steps": 5})
    subscribed = asyncio.Event()
    watching = asyncio.ensure_future(client.watch(task.name, subscribed=subscribed))
    # The snapshot came: the stream is live before any worker runs.
    await asyncio.wait_for(subscribed.wait(), 10)
    async with workers():
        snapshot, events = await asyncio.wait_for(watching, 10)
    assert snapshot.name == task.name
    assert snapshot.status.state == pb.TASK_STATE_SUBMITTED
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].status_update.state == pb.TASK_STATE_SUBMITTED
    assert events[1].status_update.state == pb.TASK_STATE_WORKING
    assert [e.progress.percent for e in events if e.HasField("progress")][:5] == [
        20,
        40,
        60,
        80,
        100,
    ]
    assert events[-1].status_update.state == pb.TASK_STATE_COMPLETED
    done = await client.get(task.name)
    assert done.last_event_seq == events[-1].sequence


async def test_watch_resumes_from_any_sequence_without_gaps_or_duplicates(
    client_for, workers
) -> None:
    client = client_for(_tenant())
    task = await client.create("noop", {"progress_steps": 40})
    async with workers():
        done = await client.wait(task.name, pb.TASK_STATE_COMPLETED)
    last = done.last_event_seq
    rng = random.Random(7)
    for after in [0, last - 1, last, *rng.sample(range(1, last), 8)]:
        snapshot, events = await client.watch(task.name, after_seq=after)
        assert snapshot.status.state == pb.TASK_STATE_COMPLETED
        assert [e.sequence for e in events] == list(range(after + 1, last + 1))


async def test_a_stream_cut_mid_task_resumes_exactly_once(client_for, workers) -> None:
    client = client_for(_tenant())
    task = await client.create("noop", {"progress_steps": 30, "sleep_seconds": 0.5})
    seen: list[int] = []
    async with workers():
        cursor = 0
        finished = False
        while not finished:
            # Read a random number of events, then drop the stream and resume.
            take = random.randint(1, 6)
            call = client.stub.WatchTask(
                pb.WatchTaskRequest(name=task.name, after_seq=cursor), metadata=client.md
            )
            async for item in call:
                if not item.HasField("event"):
                    continue  # the snapshot, or a heartbeat
                seen.append(item.event.sequence)
                cursor = item.event.sequence
                if item.event.status_update.state == pb.TASK_STATE_COMPLETED:
                    finished = True
                    break
                take -= 1
                if take == 0:
                    break
            call.cancel()
    assert seen == list(range(1, len(seen) + 1))
    assert seen[-1] == (await client.get(task.name)).last_event_seq


async def test_watching_a_finished_task_from_its_last_event_ends_after_the_snapshot(
    client_for,
) -> None:
    client = client_for(_tenant())
    task = await client.create("nope", {})  # REJECTED
    snapshot, events = await client.watch(task.name, after_seq=task.last_event_seq)
    assert snapshot.status.state == pb.TASK_STATE_REJECTED
    assert events == []

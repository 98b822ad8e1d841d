"""Following a task from outside: stop states, statuses of watch messages, and a
watch that resumes after the last event when the stream breaks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from protomesh.task.v1 import task_service_pb2 as pb
from services.task import following


def event(seq: int, state: int = pb.TASK_STATE_WORKING) -> pb.WatchTaskResponse:
    item = pb.WatchTaskResponse()
    item.event.sequence = seq
    item.event.status_update.state = state  # type: ignore[assignment]
    return item


class Stream:
    """A WatchTask call: yields its items, then ends or fails with `code`."""

    def __init__(self, items: list[pb.WatchTaskResponse], code: grpc.StatusCode | None) -> None:
        self.items, self.code, self.cancelled = items, code, False

    async def __aiter__(self) -> AsyncIterator[pb.WatchTaskResponse]:
        for item in self.items:
            yield item
        if self.code is not None:
            raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), "x")

    def cancel(self) -> None:
        self.cancelled = True


async def test_a_broken_watch_resumes_after_the_last_event() -> None:
    streams = [
        Stream([event(1), event(2)], grpc.StatusCode.UNAVAILABLE),
        Stream([event(3, pb.TASK_STATE_COMPLETED)], None),
    ]
    asked: list[int] = []

    def open_watch(request: pb.WatchTaskRequest) -> Stream:
        asked.append(request.after_seq)
        return streams[len(asked) - 1]

    seen = [item.event.sequence async for item in following.watch(open_watch, "tasks/t")]
    assert seen == [1, 2, 3]
    assert asked == [0, 2]
    assert all(s.cancelled for s in streams)


async def test_other_failures_are_raised() -> None:
    def open_watch(request: pb.WatchTaskRequest) -> Stream:
        return Stream([], grpc.StatusCode.PERMISSION_DENIED)

    with pytest.raises(grpc.aio.AioRpcError):
        [item async for item in following.watch(open_watch, "tasks/t")]


def test_a_follower_stops_at_an_end_or_when_the_caller_is_needed() -> None:
    assert following.stopped(event(1, pb.TASK_STATE_COMPLETED))
    assert following.stopped(event(1, pb.TASK_STATE_INPUT_REQUIRED))
    assert not following.stopped(event(1, pb.TASK_STATE_WORKING))
    progress = pb.WatchTaskResponse()
    progress.event.progress.percent = 40
    status = following.status_of(progress)
    assert status is not None
    assert (status.state, status.progress.percent) == (pb.TASK_STATE_WORKING, 40)
    assert following.status_of(pb.WatchTaskResponse()) is None

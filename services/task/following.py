"""Following a task from outside the task service — the CLI, the gateway's MCP
tools and its A2A binding: which states end a watch, the status a WatchTask
message carries, and a WatchTask stream that resumes from its cursor when the
connection breaks (a task service replica restarting, say)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from protomesh.task.v1 import task_service_pb2 as pb
from services.task.states import AUTH_REQUIRED, INPUT_REQUIRED, TERMINAL

# The task will not change again.
FINISHED = TERMINAL
# The task waits for its caller (SendTaskInput, new credentials): a follower stops here too.
STOPPED = TERMINAL | frozenset({INPUT_REQUIRED, AUTH_REQUIRED})
RECONNECTS = 20

# WatchTaskRequest → the stream (a stub's WatchTask, or a channel's unary_stream).
OpenWatch = Callable[[pb.WatchTaskRequest], Any]


def status_of(item: pb.WatchTaskResponse) -> pb.TaskStatus | None:
    """The task's status as of a WatchTask message: the snapshot's, a status
    update's, or WORKING with the progress of a progress event; None otherwise."""
    if item.HasField("task"):
        return item.task.status
    if item.event.HasField("status_update"):
        return item.event.status_update
    if item.event.HasField("progress"):
        return pb.TaskStatus(state=pb.TASK_STATE_WORKING, progress=item.event.progress)
    return None


def stopped(item: pb.WatchTaskResponse) -> bool:
    """Whether a follower is done after this message."""
    status = status_of(item)
    return status is not None and status.state in STOPPED


async def watch(
    open_watch: OpenWatch, name: str, after_seq: int = 0, reconnects: int = RECONNECTS
) -> AsyncIterator[pb.WatchTaskResponse]:
    """WatchTask for `name`, resumed after the last event seen whenever the stream
    ends UNAVAILABLE (at most `reconnects` times); other errors are raised.
    Heartbeats are not passed on: a follower wants the task, not the stream's
    liveness."""
    cursor = after_seq
    for _ in range(reconnects + 1):
        stream = open_watch(pb.WatchTaskRequest(name=name, after_seq=cursor))
        try:
            async for item in stream:
                if item.HasField("heartbeat"):
                    continue
                if item.HasField("event"):
                    cursor = item.event.sequence
                yield item
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        finally:
            stream.cancel()

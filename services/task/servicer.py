"""TaskService RPCs → store calls under the caller's tenant. Workers run the
tasks (services/task/worker.py); this process only accepts, reports and steers.

Unknown task types and inputs their workflow refuses are accepted as tasks in
REJECTED (terminal, with the reason in `error`), not failed calls: the caller
gets a task name to inspect, and an idempotent replay returns the same answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from protomesh.task.v1 import task_service_pb2 as pb
from protomesh.task.v1 import task_service_pb2_grpc as pb_grpc
from services.platform import heartbeats
from services.platform.context import current_call, principal
from services.platform.errors import FailedPrecondition, NotFound
from services.platform.filtering import FilterField, compile_filter
from services.platform.idempotency import ensure_replay, request_digest
from services.platform.notify import Hub
from services.platform.pagination import PageTokens, clamp_page_size
from services.platform.telemetry import current_trace_context
from services.task import convert, states
from services.task.store import NewTask, Row, TaskStore, parse_task_id
from services.task.workflows import Registry

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
WATCH_BATCH = 500
WATCH_FALLBACK_SECONDS = 15.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TIMEOUT_SECONDS = 300.0
INVALID_ARGUMENT = 3

LIST_FILTER_FIELDS = {
    "state": FilterField("state", "enum", enum=pb.TaskState),
    "type": FilterField("type", "string"),
    "context_id": FilterField("context_id", "string"),
    "create_time": FilterField("create_time", "timestamp"),
    "update_time": FilterField("update_time", "timestamp"),
}


def request_hash(task: pb.Task, input: dict[str, Any]) -> str:
    """Digest of what a CreateTask asked for (hex: the column is text)."""
    payload = {
        "type": task.type,
        "input": input,
        "priority": task.priority,
        "context_id": task.context_id,
        "cost_limit_micros": task.cost_limit_micros,
    }
    return request_digest(payload).hex()


def _not_found(name: str) -> NotFound:
    return NotFound(f"{name} not found", reason="TASK_NOT_FOUND", metadata={"name": name})


def _wrong_state(name: str, row: Row, action: str, allowed: str) -> FailedPrecondition:
    state = states.state_name(row["state"])
    return FailedPrecondition(
        f"cannot {action} {name}: it is {state} ({allowed})",
        reason="TASK_STATE",
        metadata={"name": name, "state": f"TASK_STATE_{state}"},
    )


class TaskServicer(pb_grpc.TaskServiceServicer):
    def __init__(
        self,
        store: TaskStore,
        registry: Registry,
        hub: Hub,
        page_tokens: PageTokens,
        heartbeat_seconds: float = heartbeats.DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        self.store = store
        self.registry = registry
        self.hub = hub
        self.page_tokens = page_tokens
        self.heartbeat_seconds = heartbeat_seconds

    async def CreateTask(self, request: pb.CreateTaskRequest, context: Any) -> pb.Task:
        who = principal()
        spec = request.task
        input = convert.struct_to_dict(spec.input)
        workflow = self.registry.get(spec.type)
        if workflow is None:
            problems = [
                f"unknown task type {spec.type!r} (known: {', '.join(self.registry.types())})"
            ]
        else:
            problems = workflow.validate(input)
        message = "; ".join(problems) if problems else "queued"
        # The CreateTask span itself when tracing is on, so the worker's span is its
        # child; else whatever trace the caller sent.
        traceparent, tracestate = current_trace_context()
        new = NewTask(
            type=spec.type,
            input=input,
            priority=spec.priority,
            context_id=spec.context_id,
            request_id=request.request_id or None,
            request_hash=request_hash(spec, input),
            state=states.REJECTED if problems else states.SUBMITTED,
            status_message=message,
            max_attempts=workflow.max_attempts if workflow else DEFAULT_MAX_ATTEMPTS,
            timeout_seconds=workflow.timeout_seconds if workflow else DEFAULT_TIMEOUT_SECONDS,
            cost_limit_micros=spec.cost_limit_micros,
            submitter=who.user_id,
            submitter_scopes=" ".join(sorted(who.scopes)),
            traceparent=traceparent or current_call().traceparent,
            tracestate=tracestate,
            error={"code": INVALID_ARGUMENT, "message": message} if problems else None,
        )
        row, created = await self.store.create(who.tenant_id, new)
        if not created:
            ensure_replay(
                row["request_hash"],
                bytes.fromhex(new.request_hash),
                "request_id",
                request.request_id,
                "a different task",
                metadata={"name": f"tasks/{row['id']}"},
            )
        return convert.task(row)

    async def GetTask(self, request: pb.GetTaskRequest, context: Any) -> pb.Task:
        task_id = parse_task_id(request.name)
        if task_id is None:
            raise _not_found(request.name)
        async with self.store.tenant(principal().tenant_id) as conn:
            row = await self.store.get(conn, task_id)
            if row is None:
                raise _not_found(request.name)
            artifacts = await self.store.artifacts(conn, task_id)
            history = await self.store.history(conn, task_id, request.history_length)
        return convert.task(row, artifacts, history)

    async def ListTasks(self, request: pb.ListTasksRequest, context: Any) -> pb.ListTasksResponse:
        tenant = principal().tenant_id
        size = clamp_page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        binding = {"filter": request.filter}
        after = None
        if request.page_token:
            position = self.page_tokens.decode(request.page_token, tenant, binding)
            task_id = parse_task_id(str(position.get("id", "")))
            if task_id is None:
                raise _not_found("page position")
            after = (datetime.fromisoformat(str(position["t"])), task_id)
        filter_sql, params = compile_filter(request.filter, LIST_FILTER_FIELDS, first_param=4)
        async with self.store.tenant(tenant) as conn:
            rows = await self.store.list_tasks(conn, size + 1, after, filter_sql, params)
        response = pb.ListTasksResponse(tasks=[convert.task(r) for r in rows[:size]])
        if len(rows) > size:
            last = rows[size - 1]
            response.next_page_token = self.page_tokens.encode(
                tenant, binding, {"t": last["create_time"].isoformat(), "id": str(last["id"])}
            )
        return response

    async def _locked(self, conn: Any, name: str) -> Row:
        task_id = parse_task_id(name)
        row = await self.store.get(conn, task_id, lock=True) if task_id else None
        if row is None:
            raise _not_found(name)
        return row

    async def _reload(self, conn: Any, row: Row) -> pb.Task:
        fresh = await self.store.get(conn, row["id"])
        assert fresh is not None
        return convert.task(fresh, await self.store.artifacts(conn, row["id"]))

    async def CancelTask(self, request: pb.CancelTaskRequest, context: Any) -> pb.Task:
        reason = request.reason or f"canceled by {principal().user_id}"
        async with self.store.tenant(principal().tenant_id) as conn:
            row = await self._locked(conn, request.name)
            state = row["state"]
            if state == states.CANCELED:
                return await self._reload(conn, row)
            if states.is_terminal(state):
                raise _wrong_state(request.name, row, "cancel", "it already finished")
            if state == states.WORKING:
                # The worker holding the lease ends it CANCELED (it alone may write).
                if not row["cancel_requested"]:
                    await self.store.request_cancel(conn, row["id"], reason)
            else:
                await self.store.transition(conn, row, states.CANCELED, reason, clear_lease=True)
            return await self._reload(conn, row)

    async def SendTaskInput(self, request: pb.SendTaskInputRequest, context: Any) -> pb.Task:
        async with self.store.tenant(principal().tenant_id) as conn:
            row = await self._locked(conn, request.name)
            if row["state"] != states.INPUT_REQUIRED:
                raise _wrong_state(request.name, row, "send input to", "only INPUT_REQUIRED")
            await self.store.add_input(conn, row["id"], convert.struct_to_dict(request.input))
            await self.store.transition(
                conn,
                row,
                states.SUBMITTED,
                "input received; queued",
                run_after=datetime.now().astimezone(),
            )
            return await self._reload(conn, row)

    async def RetryTask(self, request: pb.RetryTaskRequest, context: Any) -> pb.Task:
        async with self.store.tenant(principal().tenant_id) as conn:
            row = await self._locked(conn, request.name)
            if row["state"] != states.FAILED:
                raise _wrong_state(request.name, row, "retry", "only FAILED")
            workflow = self.registry.get(row["type"])
            extra = workflow.max_attempts if workflow else DEFAULT_MAX_ATTEMPTS
            await self.store.reset_for_retry(conn, row["id"], extra)
            await self.store.transition(
                conn,
                row,
                states.SUBMITTED,
                "retry requested; queued",
                run_after=datetime.now().astimezone(),
            )
            return await self._reload(conn, row)

    async def DeleteTask(
        self, request: pb.DeleteTaskRequest, context: Any
    ) -> pb.DeleteTaskResponse:
        async with self.store.tenant(principal().tenant_id) as conn:
            row = await self._locked(conn, request.name)
            if not states.is_terminal(row["state"]):
                raise _wrong_state(request.name, row, "delete", "cancel it first")
            await self.store.delete(conn, row["id"])
        return pb.DeleteTaskResponse()

    async def WatchTask(
        self, request: pb.WatchTaskRequest, context: Any
    ) -> AsyncIterator[pb.WatchTaskResponse]:
        tenant = principal().tenant_id
        task_id = parse_task_id(request.name)
        if task_id is None:
            raise _not_found(request.name)
        # Subscribe before reading, so nothing committed in between goes unnoticed.
        with self.hub.subscription(str(task_id)) as wake:
            async with self.store.tenant(tenant) as conn:
                row = await self.store.get(conn, task_id)
                if row is None:
                    raise _not_found(request.name)
                snapshot = convert.task(row, await self.store.artifacts(conn, task_id))
            yield pb.WatchTaskResponse(task=snapshot)
            if states.is_terminal(row["state"]) and request.after_seq >= row["last_event_seq"]:
                return

            def heartbeat(last: pb.WatchTaskResponse | None) -> pb.WatchTaskResponse:
                head = request.after_seq if last is None else last.event.sequence
                return pb.WatchTaskResponse(
                    heartbeat=pb.Heartbeat(head_sequence=head, time=heartbeats.now())
                )

            events = self._events_after(tenant, task_id, request.after_seq, wake)
            async for item in heartbeats.with_heartbeats(events, self.heartbeat_seconds, heartbeat):
                yield item

    async def _events_after(
        self, tenant: str, task_id: uuid.UUID, cursor: int, wake: asyncio.Event
    ) -> AsyncIterator[pb.WatchTaskResponse]:
        """The task's events after `cursor`, live, until its terminal event (or
        its deletion); woken by the hub, re-read every WATCH_FALLBACK_SECONDS."""
        while True:
            wake.clear()
            async with self.store.tenant(tenant) as conn:
                current = await self.store.get(conn, task_id)
                if current is None:
                    return  # deleted
                events = await self.store.events_after(conn, task_id, cursor, WATCH_BATCH)
            for event_row in events:
                event = convert.event(event_row)
                yield pb.WatchTaskResponse(event=event)
                cursor = event.sequence
                if (
                    event.WhichOneof("kind") == "status_update"
                    and states.is_terminal(event.status_update.state)
                    and cursor >= current["last_event_seq"]
                ):
                    return
            if len(events) == WATCH_BATCH:
                continue
            timeout = WATCH_FALLBACK_SECONDS if self.hub.listening.is_set() else 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

"""`protomesh ask` and `protomesh tasks list|show|watch|cancel|retry`: TaskService
from the terminal, rendered with Rich. The typer wiring lives in main.py; these
functions take an `Endpoint` and a bearer token."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from google.protobuf import json_format
from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from cli.errors import CommandFailed, ExitCode
from cli.output import message_dict, print_json
from protomesh.task.v1 import task_service_pb2 as pb
from protomesh.task.v1 import task_service_pb2_grpc as pb_grpc
from services.platform.channels import Endpoint
from services.task import following


def state_name(state: int) -> str:
    return pb.TaskState.Name(state).removeprefix("TASK_STATE_")  # type: ignore[arg-type]


def task_name(name_or_id: str) -> str:
    return name_or_id if name_or_id.startswith("tasks/") else f"tasks/{name_or_id}"


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class WatchView:
    """What the live display shows, folded from the event stream."""

    name: str = ""
    state: int = pb.TASK_STATE_SUBMITTED
    message: str = ""
    step: str = ""
    percent: int = 0
    answer: str = ""
    artifacts: dict[str, pb.Artifact] = field(default_factory=dict)
    cost_micros: int = 0
    tokens: tuple[int, int] = (0, 0)
    estimated: bool = False
    logs: list[str] = field(default_factory=list)
    last_seq: int = 0

    def apply_task(self, task: pb.Task) -> None:
        self.name = task.name
        self.state = task.status.state
        self.message = task.status.message
        self.cost_micros = task.cost_spent_micros
        for artifact in task.artifacts:
            self.artifacts[artifact.artifact_id] = artifact

    def apply(self, event: pb.TaskEvent) -> None:
        self.last_seq = event.sequence
        kind = event.WhichOneof("kind")
        if kind == "status_update":
            self.state = event.status_update.state
            self.message = event.status_update.message
        elif kind == "progress":
            self.step, self.percent = event.progress.step, event.progress.percent
        elif kind == "output_delta":
            self.answer += event.output_delta.text
        elif kind == "log":
            self.logs.append(f"{event.log.level}: {event.log.message}")
        elif kind == "artifact_update":
            update = event.artifact_update
            known = self.artifacts.get(update.artifact.artifact_id)
            if update.append and known is not None:
                known.parts.extend(update.artifact.parts)
            else:
                self.artifacts[update.artifact.artifact_id] = update.artifact
        elif kind == "cost":
            self.cost_micros += event.cost.amount_micros
            self.tokens = (
                self.tokens[0] + event.cost.input_tokens,
                self.tokens[1] + event.cost.output_tokens,
            )
            self.estimated = self.estimated or event.cost.estimated

    def render(self) -> Group:
        header = Text.assemble(
            (f"{state_name(self.state)}", "bold"),
            f"  {self.step} {self.percent}%" if self.step else "",
            f"  {self.message}" if self.message else "",
        )
        parts: list[Any] = [header]
        if self.answer:
            parts.append(Markdown(self.answer))
        citations = citation_rows(self.artifacts.values())
        if citations:
            table = Table(title="citations")
            for column in ("#", "document", "chunk", "quote"):
                table.add_column(column)
            for row in citations:
                table.add_row(*row)
            parts.append(table)
        if self.cost_micros or self.tokens != (0, 0):
            parts.append(
                Text(
                    f"cost {self.cost_micros} µ  tokens in {self.tokens[0]} out {self.tokens[1]}"
                    + (" (estimated)" if self.estimated else ""),
                    style="dim",
                )
            )
        return Group(*parts)


def citation_rows(artifacts: Any) -> list[tuple[str, str, str, str]]:
    rows = []
    for artifact in artifacts:
        for part in artifact.parts:
            if part.WhichOneof("content") != "data":
                continue
            data = json_format.MessageToDict(part.data)
            if data.get("kind") == "citation":
                rows.append(
                    (
                        str(int(data.get("source", 0))),
                        str(data.get("document", "")),
                        str(data.get("chunk_id", "")),
                        str(data.get("quote", "")),
                    )
                )
    return rows


async def watch(
    target: Endpoint, token: str, name: str, console: Console, as_json: bool = False
) -> WatchView:
    """Renders a task live until it stops (ends, or waits for its caller); with
    `as_json`, writes each WatchTask message as one JSON line instead.

    The task is read first (GetTask), so a bad name, token or address fails at once
    with its own status; a watch that loses the service for good (the stream's
    reconnects exhausted) before the task stopped fails as unreachable."""
    view = WatchView()
    async with target.open() as channel:
        stub = pb_grpc.TaskServiceStub(channel)
        task: pb.Task = await stub.GetTask(
            pb.GetTaskRequest(name=task_name(name), history_length=0),
            metadata=_metadata(token),
            timeout=10,
        )
        view.apply_task(task)
        open_watch = partial(stub.WatchTask, metadata=_metadata(token))
        items = following.watch(open_watch, task.name)
        last: pb.WatchTaskResponse | None = None
        if as_json:
            async for item in items:
                last = item
                print(json.dumps(message_dict(item), ensure_ascii=False), flush=True)
        else:
            with Live(view.render(), console=console, refresh_per_second=10) as live:
                async for item in items:
                    last = item
                    if item.HasField("task"):
                        view.apply_task(item.task)
                    else:
                        view.apply(item.event)
                    live.update(view.render())
    if view.state not in following.STOPPED and (last is None or not following.stopped(last)):
        raise CommandFailed(
            f"lost the task service while watching {task.name} "
            f"(last state {state_name(view.state)})",
            ExitCode.UNREACHABLE,
        )
    return view


async def ask(
    target: Endpoint,
    token: str,
    question: str,
    console: Console,
    top_k: int = 5,
    labels: dict[str, str] | None = None,
    as_json: bool = False,
) -> WatchView:
    """`protomesh ask`: submits rag.answer and renders it live (steps, streamed
    answer, citations, cost); with `as_json`, waits quietly and prints the
    finished Task (answer and citations in its artifacts) as JSON."""
    async with target.open() as channel:
        stub = pb_grpc.TaskServiceStub(channel)
        task = pb.Task(type="rag.answer")
        task.input.update({"question": question, "top_k": top_k})
        if labels:
            task.input.update({"filters": {"labels": labels}})
        created = await stub.CreateTask(
            pb.CreateTaskRequest(task=task), metadata=_metadata(token), timeout=10
        )
    if not as_json:
        console.print(f"[dim]{created.name}[/dim]")
        return await watch(target, token, created.name, console)
    view = await watch(target, token, created.name, Console(quiet=True), as_json=False)
    print_json(message_dict(await _get(target, token, created.name, history_length=0)))
    return view


async def _get(target: Endpoint, token: str, name: str, history_length: int = 50) -> pb.Task:
    async with target.open() as channel:
        task: pb.Task = await pb_grpc.TaskServiceStub(channel).GetTask(
            pb.GetTaskRequest(name=task_name(name), history_length=history_length),
            metadata=_metadata(token),
            timeout=10,
        )
    return task


def state_filter(filter: str, states: Sequence[str]) -> str:
    """An AIP-160 filter: `filter` AND any of `states` (TaskState names)."""
    clauses = [f"({filter})"] if filter.strip() else []
    if states:
        clauses.append("(" + " OR ".join(f"state = {state}" for state in states) + ")")
    return " AND ".join(clauses)


def render_tasks(tasks: Sequence[pb.Task], console: Console, next_page_token: str = "") -> Table:
    """Tasks as a table; names in full (never cut: they are what `tasks show` takes)."""
    table = Table(title="tasks")
    table.add_column("name", no_wrap=True, min_width=max((len(t.name) for t in tasks), default=4))
    for column in ("type", "state", "message", "created"):
        table.add_column(column, overflow="fold")
    for task in tasks:
        table.add_row(
            task.name,
            task.type,
            state_name(task.status.state),
            task.status.message,
            task.create_time.ToDatetime().isoformat(timespec="seconds"),
        )
    console.print(table)
    if next_page_token:
        console.print(f"[dim]more: --page-token {next_page_token}[/dim]", soft_wrap=True)
    return table


async def list_tasks(
    target: Endpoint,
    token: str,
    console: Console,
    filter: str = "",
    page_size: int = 20,
    page_token: str = "",
    as_json: bool = False,
) -> list[pb.Task]:
    async with target.open() as channel:
        response = await pb_grpc.TaskServiceStub(channel).ListTasks(
            pb.ListTasksRequest(filter=filter, page_size=page_size, page_token=page_token),
            metadata=_metadata(token),
            timeout=10,
        )
    if as_json:
        print_json(
            {
                "items": [message_dict(task) for task in response.tasks],
                "nextPageToken": response.next_page_token,
            }
        )
    else:
        render_tasks(response.tasks, console, response.next_page_token)
    return list(response.tasks)


async def show(
    target: Endpoint, token: str, name: str, console: Console, as_json: bool = False
) -> pb.Task:
    task = await _get(target, token, name)
    if as_json:
        print_json(message_dict(task))
    else:
        console.print_json(json.dumps(json_format.MessageToDict(task)))
    return task


def _print_task(task: pb.Task, console: Console, as_json: bool) -> None:
    if as_json:
        print_json(message_dict(task))
    else:
        console.print(
            f"{task.name}: {state_name(task.status.state)} {task.status.message}", soft_wrap=True
        )


async def cancel(
    target: Endpoint,
    token: str,
    name: str,
    console: Console,
    reason: str = "",
    as_json: bool = False,
) -> pb.Task:
    async with target.open() as channel:
        task: pb.Task = await pb_grpc.TaskServiceStub(channel).CancelTask(
            pb.CancelTaskRequest(name=task_name(name), reason=reason),
            metadata=_metadata(token),
            timeout=10,
        )
    _print_task(task, console, as_json)
    return task


async def retry(
    target: Endpoint, token: str, name: str, console: Console, as_json: bool = False
) -> pb.Task:
    async with target.open() as channel:
        task: pb.Task = await pb_grpc.TaskServiceStub(channel).RetryTask(
            pb.RetryTaskRequest(name=task_name(name)), metadata=_metadata(token), timeout=10
        )
    _print_task(task, console, as_json)
    return task

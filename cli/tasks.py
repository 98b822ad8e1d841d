"""`protomesh ask` and `protomesh tasks list|show|watch|cancel|retry`: TaskService
from the terminal, rendered with Rich. The typer wiring lives in main.py; these
functions take an `Endpoint` and a bearer token."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from google.protobuf import json_format
from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

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


async def watch(target: Endpoint, token: str, name: str, console: Console) -> WatchView:
    """Renders a task live until it ends."""
    view = WatchView()
    async with target.open() as channel:
        stub = pb_grpc.TaskServiceStub(channel)
        with Live(view.render(), console=console, refresh_per_second=10) as live:
            open_watch = partial(stub.WatchTask, metadata=_metadata(token))
            async for item in following.watch(open_watch, task_name(name)):
                if item.HasField("task"):
                    view.apply_task(item.task)
                else:
                    view.apply(item.event)
                live.update(view.render())
    return view


async def ask(
    target: Endpoint,
    token: str,
    question: str,
    console: Console,
    top_k: int = 5,
    labels: dict[str, str] | None = None,
) -> WatchView:
    """`protomesh ask`: submits rag.answer and renders it live (steps, streamed
    answer, citations, cost)."""
    async with target.open() as channel:
        stub = pb_grpc.TaskServiceStub(channel)
        task = pb.Task(type="rag.answer")
        task.input.update({"question": question, "top_k": top_k})
        if labels:
            task.input.update({"filters": {"labels": labels}})
        created = await stub.CreateTask(
            pb.CreateTaskRequest(task=task), metadata=_metadata(token), timeout=10
        )
    console.print(f"[dim]{created.name}[/dim]")
    return await watch(target, token, created.name, console)


async def list_tasks(
    target: Endpoint, token: str, console: Console, filter: str = "", page_size: int = 20
) -> list[pb.Task]:
    async with target.open() as channel:
        response = await pb_grpc.TaskServiceStub(channel).ListTasks(
            pb.ListTasksRequest(filter=filter, page_size=page_size),
            metadata=_metadata(token),
            timeout=10,
        )
    table = Table(title="tasks")
    for column in ("name", "type", "state", "message", "created"):
        table.add_column(column)
    for task in response.tasks:
        table.add_row(
            task.name,
            task.type,
            state_name(task.status.state),
            task.status.message[:60],
            task.create_time.ToDatetime().isoformat(timespec="seconds"),
        )
    console.print(table)
    return list(response.tasks)


async def show(target: Endpoint, token: str, name: str, console: Console) -> pb.Task:
    async with target.open() as channel:
        task: pb.Task = await pb_grpc.TaskServiceStub(channel).GetTask(
            pb.GetTaskRequest(name=task_name(name), history_length=50),
            metadata=_metadata(token),
            timeout=10,
        )
    console.print_json(json.dumps(json_format.MessageToDict(task)))
    return task


async def cancel(
    target: Endpoint, token: str, name: str, console: Console, reason: str = ""
) -> pb.Task:
    async with target.open() as channel:
        task: pb.Task = await pb_grpc.TaskServiceStub(channel).CancelTask(
            pb.CancelTaskRequest(name=task_name(name), reason=reason),
            metadata=_metadata(token),
            timeout=10,
        )
    console.print(f"{task.name}: {state_name(task.status.state)} {task.status.message}")
    return task


async def retry(target: Endpoint, token: str, name: str, console: Console) -> pb.Task:
    async with target.open() as channel:
        task: pb.Task = await pb_grpc.TaskServiceStub(channel).RetryTask(
            pb.RetryTaskRequest(name=task_name(name)), metadata=_metadata(token), timeout=10
        )
    console.print(f"{task.name}: {state_name(task.status.state)} {task.status.message}")
    return task

"""protomesh tasks ↔ A2A v1.0 objects, without I/O.

The task states are A2A's, one to one (same names). A task's `name` is
`tasks/{id}` and its A2A id is `{id}`. An A2A message becomes a task input: the
text parts joined are the skill's main field (`question` for `rag.answer`,
`topic` for `research`), data parts are merged in as structured input. Artifacts
keep their parts: text stays text, structured data (citations, the verification
report) becomes data parts. History is the user's message followed by the
agent's status messages, oldest first."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from a2a.types import a2a_pb2 as a2a
from google.protobuf import json_format, struct_pb2

from protomesh.task.v1 import task_service_pb2 as pb

TASK_PREFIX = "tasks/"


@dataclass(frozen=True)
class Skill:
    """An A2A skill: a task type and the input field the message text fills."""

    id: str
    name: str
    description: str
    text_field: str
    examples: tuple[str, ...]


SKILLS = {
    skill.id: skill
    for skill in (
        Skill(
            "rag.answer",
            "Answer from your documents",
            "Answers a question from the caller's documents (hybrid keyword + vector search) "
            "with sentences that cite the retrieved passages; says so when the documents do "
            "not answer it.",
            "question",
            ("How many vacation days do employees accrue?",),
        ),
        Skill(
            "research",
            "Research a topic",
            "Plans sub-questions about a topic, searches the caller's documents for each and "
            'writes a cited report. Send data {"confirm_plan": true} to review the plan first.',
            "topic",
            ("Our data retention obligations",),
        ),
    )
}
DEFAULT_SKILL = "rag.answer"


class MappingError(ValueError):
    """A message that cannot become a task (names the offending field)."""


def task_id(name: str) -> str:
    return name.removeprefix(TASK_PREFIX)


def task_name(identifier: str) -> str:
    if not identifier or "/" in identifier:
        raise MappingError(f"id: {identifier!r} is not a task id")
    return TASK_PREFIX + identifier


def message_text(message: a2a.Message) -> str:
    return "\n".join(part.text for part in message.parts if part.WhichOneof("content") == "text")


def message_data(message: a2a.Message) -> dict[str, Any]:
    """The data parts merged (later parts win); each must be a JSON object."""
    merged: dict[str, Any] = {}
    for part in message.parts:
        if part.WhichOneof("content") != "data":
            continue
        value = json_format.MessageToDict(part.data)
        if not isinstance(value, dict):
            raise MappingError("message.parts.data: data parts must be JSON objects")
        merged.update(value)
    return merged


def skill_of(message: a2a.Message, metadata: Mapping[str, Any]) -> Skill:
    """The skill named by the request's or the message's `skill` metadata."""
    message_meta = json_format.MessageToDict(message.metadata) if message.metadata else {}
    chosen = str(metadata.get("skill") or message_meta.get("skill") or DEFAULT_SKILL)
    try:
        return SKILLS[chosen]
    except KeyError:
        raise MappingError(
            f"metadata.skill: unknown skill {chosen!r}; skills: {', '.join(SKILLS)}"
        ) from None


def task_input(message: a2a.Message, skill: Skill) -> dict[str, Any]:
    """The task input for a new task of `skill` from the user's message."""
    text = message_text(message).strip()
    data = message_data(message)
    if text:
        data.setdefault(skill.text_field, text)
    if not data.get(skill.text_field):
        raise MappingError(
            f"message.parts: a text part (or data field {skill.text_field!r}) is required"
        )
    data["a2a_message_id"] = message.message_id or uuid.uuid4().hex
    return data


def follow_up_input(message: a2a.Message) -> dict[str, Any]:
    """Input for a task waiting on the user (INPUT_REQUIRED)."""
    data = message_data(message)
    text = message_text(message).strip()
    if text:
        data.setdefault("text", text)
    if not data:
        raise MappingError("message.parts: the follow-up message is empty")
    return data


def new_task(message: a2a.Message, metadata: Mapping[str, Any]) -> pb.Task:
    skill = skill_of(message, metadata)
    task = pb.Task(type=skill.id, context_id=message.context_id or uuid.uuid4().hex)
    task.input.update(task_input(message, skill))
    return task


def to_a2a_state(state: int) -> Any:
    return a2a.TaskState.Value(pb.TaskState.Name(state))


def from_a2a_state(state: int) -> int:
    return int(pb.TaskState.Value(a2a.TaskState.Name(state)))


def _agent_message(text: str, task: pb.Task, key: str) -> a2a.Message:
    return a2a.Message(
        message_id=f"{task_id(task.name)}-{key}",
        context_id=task.context_id,
        task_id=task_id(task.name),
        role=a2a.ROLE_AGENT,
        parts=[a2a.Part(text=text)],
    )


def to_a2a_status(status: pb.TaskStatus, task: pb.Task) -> a2a.TaskStatus:
    result = a2a.TaskStatus(state=to_a2a_state(status.state))
    if status.message:
        result.message.CopyFrom(_agent_message(status.message, task, "status"))
    if status.HasField("update_time"):
        result.timestamp.CopyFrom(status.update_time)
    return result


def to_a2a_part(part: pb.Part) -> a2a.Part:
    if part.HasField("data"):
        value = struct_pb2.Value()
        value.struct_value.CopyFrom(part.data)
        return a2a.Part(data=value, media_type=part.media_type or "application/json")
    return a2a.Part(text=part.text, media_type=part.media_type or "text/markdown")


def to_a2a_artifact(artifact: pb.Artifact) -> a2a.Artifact:
    result = a2a.Artifact(
        artifact_id=artifact.artifact_id,
        name=artifact.name,
        description=artifact.description,
        parts=[to_a2a_part(part) for part in artifact.parts],
    )
    if artifact.HasField("metadata"):
        result.metadata.CopyFrom(artifact.metadata)
    return result


def user_message(task: pb.Task) -> a2a.Message | None:
    """The user's message the task was created from, rebuilt from its input."""
    skill = SKILLS.get(task.type)
    values = json_format.MessageToDict(task.input) if task.HasField("input") else {}
    text = str(values.get(skill.text_field, "")) if skill else ""
    if not text:
        return None
    return a2a.Message(
        message_id=str(values.get("a2a_message_id", f"{task_id(task.name)}-input")),
        context_id=task.context_id,
        task_id=task_id(task.name),
        role=a2a.ROLE_USER,
        parts=[a2a.Part(text=text)],
    )


def history(task: pb.Task, length: int) -> list[a2a.Message]:
    """Up to `length` latest messages, oldest first (0: none)."""
    if length <= 0:
        return []
    messages = [m for m in [user_message(task)] if m is not None]
    for event in task.history:
        if event.HasField("status_update") and event.status_update.message:
            messages.append(
                _agent_message(event.status_update.message, task, f"event-{event.sequence}")
            )
    return messages[-length:]


def to_a2a_task(task: pb.Task, history_length: int = 0, artifacts: bool = True) -> a2a.Task:
    result = a2a.Task(
        id=task_id(task.name),
        context_id=task.context_id,
        status=to_a2a_status(task.status, task),
        history=history(task, history_length),
    )
    if artifacts:
        result.artifacts.extend(to_a2a_artifact(a) for a in task.artifacts)
    result.metadata.update({"skill": task.type, "name": task.name})
    return result


def to_a2a_events(
    task: pb.Task, event: pb.TaskEvent
) -> Iterable[a2a.TaskStatusUpdateEvent | a2a.TaskArtifactUpdateEvent]:
    """The A2A stream events for one task event (most kinds have none)."""
    identifier = task_id(task.name)
    if event.HasField("status_update"):
        yield a2a.TaskStatusUpdateEvent(
            task_id=identifier,
            context_id=task.context_id,
            status=to_a2a_status(event.status_update, task),
        )
    elif event.HasField("artifact_update"):
        update = event.artifact_update
        yield a2a.TaskArtifactUpdateEvent(
            task_id=identifier,
            context_id=task.context_id,
            artifact=to_a2a_artifact(update.artifact),
            append=update.append,
            last_chunk=update.last_chunk,
        )

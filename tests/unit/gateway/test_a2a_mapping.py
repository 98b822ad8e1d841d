"""protomesh task ↔ A2A mapping, without I/O."""

from __future__ import annotations

import pytest
from a2a.types import a2a_pb2 as a2a
from google.protobuf import json_format, struct_pb2

from gateway import a2a_mapping as mapping
from protomesh.task.v1 import task_service_pb2 as pb


def user(*parts: a2a.Part, context: str = "") -> a2a.Message:
    return a2a.Message(message_id="m1", context_id=context, role=a2a.ROLE_USER, parts=parts)


def data(**values: object) -> a2a.Part:
    return a2a.Part(data=json_format.ParseDict(values, struct_pb2.Value()))


def test_every_task_state_maps_one_to_one_by_name() -> None:
    ours = {v.name: v.number for v in pb.TaskState.DESCRIPTOR.values}
    theirs = {v.name for v in a2a.TaskState.DESCRIPTOR.values}
    assert set(ours) == theirs
    for number in ours.values():
        assert mapping.from_a2a_state(mapping.to_a2a_state(number)) == number


def test_a_message_becomes_a_rag_answer_task_with_its_text_and_data() -> None:
    task = mapping.new_task(user(a2a.Part(text="Why?"), data(top_k=3), context="c1"), {})

    assert task.type == "rag.answer"
    assert task.context_id == "c1"
    assert json_format.MessageToDict(task.input) == {
        "question": "Why?",
        "top_k": 3.0,
        "a2a_message_id": "m1",
    }


def test_the_skill_comes_from_metadata_and_fills_its_own_field() -> None:
    task = mapping.new_task(user(a2a.Part(text="Tides")), {"skill": "research"})

    assert task.type == "research"
    assert task.input["topic"] == "Tides"
    assert task.context_id  # generated when the message has none


@pytest.mark.parametrize(
    ("message", "metadata", "field"),
    [
        (user(), {}, "message.parts"),
        (user(a2a.Part(text="x")), {"skill": "astrology"}, "metadata.skill"),
        (user(a2a.Part(data=struct_pb2.Value(string_value="s"))), {}, "message.parts.data"),
    ],
)
def test_messages_that_cannot_become_tasks_name_the_field(
    message: a2a.Message, metadata: dict[str, str], field: str
) -> None:
    with pytest.raises(mapping.MappingError, match=field.replace(".", r"\.")):
        mapping.new_task(message, metadata)


def test_a_task_maps_with_artifacts_and_history_oldest_first() -> None:
    task = pb.Task(name="tasks/t1", type="rag.answer", context_id="c1")
    task.input.update({"question": "Why?", "a2a_message_id": "m1"})
    task.status.state = pb.TASK_STATE_COMPLETED
    answer = task.artifacts.add(artifact_id="a1", name="answer")
    answer.parts.add(text="Because [1].")
    answer.parts.add().data.update({"kind": "citation", "index": 1})
    task.history.add(sequence=1).status_update.message = "searching"
    task.history.add(sequence=2).status_update.message = "answered"

    converted = mapping.to_a2a_task(task, history_length=10)

    assert converted.id == "t1"
    assert converted.status.state == a2a.TASK_STATE_COMPLETED
    assert [m.role for m in converted.history] == [a2a.ROLE_USER, a2a.ROLE_AGENT, a2a.ROLE_AGENT]
    assert converted.history[0].message_id == "m1"
    assert [m.parts[0].text for m in converted.history[1:]] == ["searching", "answered"]
    (artifact,) = converted.artifacts
    assert artifact.parts[0].text == "Because [1]."
    assert json_format.MessageToDict(artifact.parts[1].data) == {"kind": "citation", "index": 1.0}
    assert mapping.to_a2a_task(task, history_length=1).history[0].parts[0].text == "answered"
    assert not mapping.to_a2a_task(task, artifacts=False).artifacts


def test_task_ids_with_slashes_are_refused() -> None:
    with pytest.raises(mapping.MappingError):
        mapping.task_name("../documents/x")

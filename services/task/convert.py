"""Database rows ↔ protobuf messages of protomesh.task.v1."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.rpc import code_pb2, status_pb2

from protomesh.task.v1 import task_service_pb2 as pb
from services.task import states
from services.task.store import Row

EVENT_KINDS = ("status_update", "progress", "log", "output_delta", "artifact_update", "cost")


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if value:
        out.update(dict(value))
    return out


def struct_to_dict(value: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value)


def error_status(error: Mapping[str, Any] | None) -> status_pb2.Status | None:
    if not error:
        return None
    return status_pb2.Status(
        code=int(error.get("code", code_pb2.UNKNOWN)), message=str(error.get("message", ""))
    )


def to_json(message: Any) -> dict[str, Any]:
    """A message as proto3 JSON (what the event and artifact columns hold)."""
    return json_format.MessageToDict(message)


def event(row: Row) -> pb.TaskEvent:
    out = pb.TaskEvent(sequence=row["seq"], time=timestamp(row["time"]))
    kind = row["kind"]
    if kind not in EVENT_KINDS:
        return out
    json_format.ParseDict(row["body"], getattr(out, kind), ignore_unknown_fields=True)
    if kind == "status_update":
        out.status_update.update_time.FromDatetime(row["time"])
    return out


def artifact(row: Row) -> pb.Artifact:
    out = pb.Artifact(
        artifact_id=row["artifact_id"], name=row["name"], description=row["description"]
    )
    for part in row["parts"] or []:
        json_format.ParseDict(part, out.parts.add(), ignore_unknown_fields=True)
    if row["metadata"]:
        out.metadata.update(row["metadata"])
    return out


def attempts(log: Iterable[Mapping[str, Any]]) -> list[pb.Attempt]:
    out = []
    for entry in log:
        attempt = pb.Attempt(
            number=int(entry.get("number", 0)), worker_id=entry.get("worker_id", "")
        )
        for field in ("start_time", "end_time"):
            raw = entry.get(field)
            if raw:
                getattr(attempt, field).FromDatetime(datetime.fromisoformat(raw))
        status = error_status(entry.get("error"))
        if status is not None:
            attempt.error.CopyFrom(status)
        out.append(attempt)
    return out


def task(
    row: Row,
    artifacts: Iterable[Row] = (),
    history: Iterable[Row] = (),
) -> pb.Task:
    out = pb.Task(
        name=f"tasks/{row['id']}",
        type=row["type"],
        input=struct(row["input"]),
        priority=row["priority"],
        context_id=row["context_id"],
        cost_limit_micros=row["cost_limit_micros"],
        status=pb.TaskStatus(
            state=row["state"],  # type: ignore[arg-type]
            message=row["status_message"],
            update_time=timestamp(row["status_time"]),
        ),
        max_attempts=row["max_attempts"],
        cost_spent_micros=row["cost_spent_micros"],
        last_event_seq=row["last_event_seq"],
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
    )
    if row["progress_step"] and not states.is_terminal(row["state"]):
        out.status.progress.step = row["progress_step"]
        out.status.progress.percent = row["progress_percent"]
    for field in ("start_time", "end_time"):
        stamp = timestamp(row[field])
        if stamp is not None:
            getattr(out, field).CopyFrom(stamp)
    status = error_status(row["error"])
    if status is not None:
        out.error.CopyFrom(status)
    out.artifacts.extend(artifact(a) for a in artifacts)
    out.history.extend(event(e) for e in history)
    out.attempts.extend(attempts(row["attempt_log"] or []))
    return out

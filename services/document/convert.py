"""Database rows → protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2

from protomesh.document.v1 import document_service_pb2 as pb
from services.document.documents import document_name


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def document_from_row(row: Mapping[str, Any], with_content: bool = True) -> pb.Document:
    document = pb.Document(
        name=document_name(row["id"]),
        title=row["title"],
        content=row["content"] if with_content else "",
        mime_type=row["mime_type"],
        labels=row["labels"],
        source_uri=row["source_uri"],
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
        etag=row["etag"],
        sequence=row["sequence"],
        size_bytes=row["size_bytes"],
    )
    if row["metadata"]:
        document.metadata.update(row["metadata"])
    return document


def change_from_row(row: Mapping[str, Any], with_tenant: bool) -> pb.DocumentChange:
    change = pb.DocumentChange(
        sequence=row["sequence"],
        type=row["change_type"],
        document_name=document_name(row["document_id"]),
        tenant_id=row["tenant_id"] if with_tenant else "",
        change_time=timestamp(row["change_time"]),
    )
    if row["change_type"] != pb.CHANGE_TYPE_DELETED:
        snapshot = dict(row)
        snapshot["id"] = row["document_id"]
        change.document.CopyFrom(
            document_from_row(snapshot, with_content=row["content"] is not None)
        )
    return change

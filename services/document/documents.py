"""The rules of DocumentService, free of I/O: names, limits, what a create
carries and how it is fingerprinted, which update-mask paths exist, and how
`order_by` reads."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from protomesh.document.v1 import document_service_pb2 as pb
from services.platform.errors import InvalidArgument
from services.platform.fieldmask import UpdateRules
from services.platform.idempotency import request_digest

NAME_PREFIX = "documents/"
DEFAULT_MIME_TYPE = "text/plain"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# BatchCreateDocuments accepts at most this many items per stream; the next one
# aborts the stream with RESOURCE_EXHAUSTED (everything before it is stored and
# replays idempotently by request id).
MAX_BATCH_ITEMS = 10_000

UPDATABLE_FIELDS = ("title", "content", "mime_type", "labels", "metadata", "source_uri")


def document_name(document_id: str) -> str:
    return NAME_PREFIX + document_id


def document_id_of(name: str, field: str = "name") -> str:
    """The id in `documents/{id}`; INVALID_ARGUMENT on `field` otherwise."""
    document_id = name.removeprefix(NAME_PREFIX)
    if not name.startswith(NAME_PREFIX) or not _valid_id(document_id):
        raise InvalidArgument.for_field(
            field, f"{name!r} is not a document name (documents/{{id}})"
        )
    return document_id


_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def _valid_id(document_id: str) -> bool:
    return _ID.fullmatch(document_id) is not None


@dataclass(frozen=True)
class NewDocument:
    """What a create stores: the caller's fields, with output-only ones dropped."""

    title: str
    content: str
    mime_type: str
    labels: dict[str, str]
    metadata: dict[str, Any]
    source_uri: str

    @property
    def size_bytes(self) -> int:
        return len(self.content.encode())


def new_document(document: pb.Document, max_bytes: int) -> NewDocument:
    """A create's document, checked for content (required, within `max_bytes`)."""
    check_content(document.content, max_bytes)
    return NewDocument(
        title=document.title,
        content=document.content,
        mime_type=document.mime_type or DEFAULT_MIME_TYPE,
        labels=dict(document.labels),
        metadata=json_format.MessageToDict(document.metadata),
        source_uri=document.source_uri,
    )


def check_content(content: str, max_bytes: int) -> None:
    if not content:
        raise InvalidArgument.for_field("document.content", "document content is required")
    size = len(content.encode())
    if size > max_bytes:
        raise InvalidArgument.for_field(
            "document.content",
            f"content is {size} bytes; the limit is {max_bytes}",
            reason="CONTENT_TOO_LARGE",
        )


def request_fingerprint(document: NewDocument, document_id: str) -> bytes:
    """Digest of a create's payload: a replay must match it byte for byte."""
    return request_digest(
        {
            "document_id": document_id,
            "title": document.title,
            "content": document.content,
            "mime_type": document.mime_type,
            "labels": document.labels,
            "metadata": document.metadata,
            "source_uri": document.source_uri,
        }
    )


UPDATE_RULES = UpdateRules(pb.Document, UPDATABLE_FIELDS)


def update_fields(paths: Iterable[str], document: pb.Document | None = None) -> frozenset[str]:
    """The fields an `update_mask` names (AIP-134, `services.platform.fieldmask`):
    none means every populated updatable field of `document`, `*` every one."""
    return UPDATE_RULES.resolve(paths, document).fields


@dataclass(frozen=True)
class Ordering:
    """A parsed `order_by`: a sort key (`create_time`, `update_time` or `name`)
    and direction; ties (and `name`) are broken by the document id."""

    key: str
    descending: bool

    @property
    def canonical(self) -> str:
        return self.key + (" desc" if self.descending else "")


ORDER_KEYS = ("create_time", "update_time", "name")
DEFAULT_ORDERING = Ordering("create_time", descending=True)


def parse_order_by(text: str) -> Ordering:
    words = text.split()
    if not words:
        return DEFAULT_ORDERING
    key, *rest = words
    direction = rest[0].lower() if rest else "asc"
    if key not in ORDER_KEYS or len(rest) > 1 or direction not in ("asc", "desc"):
        raise InvalidArgument.for_field(
            "order_by",
            f"{text!r} is not an order; use create_time, update_time or name, "
            "optionally followed by desc",
        )
    return Ordering(key, descending=direction == "desc")

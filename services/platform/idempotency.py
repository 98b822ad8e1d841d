"""Idempotent creates, one rule for documents, tasks and cost: a request id (or
idempotency key) names one request; the digest of what that request asked for
tells a replay (the same digest: answer as the first time) from a reused id
(another digest: ALREADY_EXISTS with reason `REQUEST_ID_REUSED`). Stores keep the
digest beside the id, under a unique constraint; servicers compare."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message

from services.platform.errors import AlreadyExists


def request_digest(payload: Mapping[str, Any] | Message) -> bytes:
    """sha256 of the request's canonical form: a message's deterministic encoding,
    or a mapping as JSON with sorted keys and no spaces."""
    if isinstance(payload, Message):
        data = payload.SerializeToString(deterministic=True)
    else:
        data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).digest()


def same_request(stored: bytes | memoryview | str | None, digest: bytes) -> bool:
    """Whether a stored digest (bytes, or hex text in older tables) is `digest`."""
    if stored is None:
        return False
    if isinstance(stored, str):
        return stored == digest.hex()
    return bytes(stored) == digest


def ensure_replay(
    stored: bytes | memoryview | str | None,
    digest: bytes,
    key_field: str,
    key: str,
    what: str,
    reason: str = "REQUEST_ID_REUSED",
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Raises ALREADY_EXISTS (`reason`, the key in its metadata) unless the stored
    digest is this request's: the key named a different request before."""
    if not same_request(stored, digest):
        raise AlreadyExists(
            f"{key_field} {key!r} was used for {what}",
            reason=reason,
            metadata={key_field: key, **(metadata or {})},
        )

"""Reading request bodies from ASGI `receive`: whole JSON bodies under a size
limit, and NDJSON bodies line by line (bounded line length, never buffered
whole), plus the content-type checks that answer 415.

Like grpc-gateway, a body sent without a Content-Type, or as
`application/x-www-form-urlencoded` (what `curl -d '{...}'` sends), is read as
JSON when it parses as JSON; when it does not, and for every other non-JSON
type, the answer is 415."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.types import Receive

from gateway.errors import GatewayError, payload_too_large, unsupported_media_type
from gateway.jsonmap import BindError, NotJson, loads

JSON_TYPES = ("application/json",)
FORM = "application/x-www-form-urlencoded"
# Types whose body is read as JSON when it parses as JSON (grpc-gateway does the same).
JSON_IF_PARSES = ("", FORM)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json")


class ClientDisconnected(Exception):
    """The caller went away while the gateway was still reading or writing."""


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json_type(kind: str) -> bool:
    return kind in JSON_TYPES or (kind.startswith("application/") and kind.endswith("+json"))


def json_payload(headers: Mapping[str, str], body: bytes) -> Any:
    """The body of a unary request as JSON (None when empty). A JSON type that does
    not parse is a 400; no type or a form type is JSON if it parses, else 415 (the
    reason included); any other type is a 415."""
    kind = media_type(headers)
    empty = not body.strip()
    if is_json_type(kind):
        return None if empty else loads(body)
    if kind not in JSON_IF_PARSES:
        raise unsupported_media_type(kind, "application/json")
    if empty:
        return None
    try:
        return loads(body)
    except NotJson as exc:
        error = unsupported_media_type(kind, "application/json")
        error.message = (
            f"content type {kind or '(none)'!r} is read as JSON only when the body is JSON, "
            f"and this one is not ({exc}); send JSON with Content-Type: application/json"
        )
        raise error from None


def check_ndjson_content_type(headers: Mapping[str, str]) -> None:
    kind = media_type(headers)
    if kind and kind not in NDJSON_TYPES:
        raise unsupported_media_type(kind, "application/x-ndjson")


def declared_length(headers: Mapping[str, str], limit: int) -> None:
    raw = headers.get("content-length")
    if raw is None:
        return
    try:
        length = int(raw)
    except ValueError:
        raise BindError("Content-Length is not a number") from None
    if length > limit:
        raise payload_too_large(limit)


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The whole body, or 413 as soon as it grows past `limit` bytes."""
    declared_length(headers, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise payload_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def iter_lines(receive: Receive, max_line: int) -> AsyncIterator[tuple[int, bytes]]:
    """Yields (line number, line) of an NDJSON body as chunks arrive; blank lines
    are skipped; a line longer than `max_line` bytes is a 413."""
    pending = bytearray()
    number = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        more = bool(message.get("more_body", False))
        pending += message.get("body", b"")
        while True:
            cut = pending.find(b"\n")
            if cut < 0:
                break
            line = bytes(pending[:cut]).strip()
            del pending[: cut + 1]
            number += 1
            if len(line) > max_line:
                raise _line_too_long(number, max_line)
            if line:
                yield number, line
        if len(pending) > max_line:
            raise _line_too_long(number + 1, max_line)
    tail = bytes(pending).strip()
    if tail:
        yield number + 1, tail


def _line_too_long(number: int, limit: int) -> GatewayError:
    error = payload_too_large(limit)
    error.message = f"line {number} of the NDJSON body is longer than {limit} bytes"
    return error

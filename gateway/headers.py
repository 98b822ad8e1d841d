"""HTTP request headers → gRPC metadata and deadline.

Forwarded: `Authorization`, `traceparent`, `tracestate` (when printable ASCII, as
gRPC metadata must be; otherwise dropped), `X-Request-Id` (one is generated when
absent or unusable, and echoed on the response) and every `Grpc-Metadata-<key>`
header as `<key>` (binary `-bin` keys are base64 on the wire). `Grpc-Timeout`
(gRPC's own format, e.g. `500m`) or `X-Timeout` (seconds, `2.5` or `2.5s`) set the
deadline, never longer than the method's default deadline.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping

from gateway.jsonmap import BindError

REQUEST_ID = "x-request-id"
FORWARDED = ("authorization", "traceparent", "tracestate")
METADATA_PREFIX = "grpc-metadata-"
_KEY = re.compile(r"^[0-9a-z_.\-]+$")
_RESERVED = frozenset({"content-type", "te", "user-agent", "host", "connection"})
_GRPC_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_MAX_REQUEST_ID = 128

Metadata = tuple[tuple[str, str | bytes], ...]


def request_id_of(headers: Mapping[str, str]) -> str:
    """The caller's request id (when printable and short) or a new one."""
    given = headers.get(REQUEST_ID, "")
    if given and len(given) <= _MAX_REQUEST_ID and given.isascii() and given.isprintable():
        return given
    return uuid.uuid4().hex


def metadata_from(headers: Mapping[str, str], request_id: str) -> Metadata:
    """The gRPC metadata to send upstream for these HTTP headers."""
    out: list[tuple[str, str | bytes]] = [(REQUEST_ID, request_id)]
    for name in FORWARDED:
        value = headers.get(name)
        # gRPC metadata values are printable ASCII. A malformed trace header is
        # ignored (as W3C trace context says); a malformed Authorization is as
        # good as none, so the service answers UNAUTHENTICATED.
        if value and value.isascii() and value.isprintable():
            out.append((name, value))
    for name, value in headers.items():
        if not name.startswith(METADATA_PREFIX):
            continue
        key = name[len(METADATA_PREFIX) :]
        if not _KEY.match(key) or key.startswith("grpc-") or key in _RESERVED:
            raise BindError(f"header {name!r} cannot be forwarded as gRPC metadata", name)
        if key.endswith("-bin"):
            try:
                out.append((key, base64.b64decode(value, validate=True)))
            except (binascii.Error, ValueError):
                raise BindError(f"header {name!r} must be base64", name) from None
        else:
            if not value.isascii() or not value.isprintable():
                raise BindError(f"header {name!r} must be printable ASCII", name)
            out.append((key, value))
    return tuple(out)


def timeout_from(headers: Mapping[str, str], default: float | None) -> float | None:
    """The call's deadline in seconds: the caller's, capped by the method's default.

    `default` None means the method declares no deadline (long-lived streams)."""
    requested: float | None = None
    grpc_timeout = headers.get("grpc-timeout")
    x_timeout = headers.get("x-timeout")
    if grpc_timeout:
        match = _GRPC_TIMEOUT.match(grpc_timeout.strip())
        if match is None:
            raise BindError(f"Grpc-Timeout {grpc_timeout!r} is not like '500m' or '2S'")
        requested = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    elif x_timeout:
        text = x_timeout.strip().removesuffix("s")
        try:
            requested = float(text)
        except ValueError:
            raise BindError(f"X-Timeout {x_timeout!r} is not a number of seconds") from None
        if not (requested > 0 and requested < 1e7):
            raise BindError(f"X-Timeout {x_timeout!r} must be a positive number of seconds")
    if requested is None:
        return default
    if default is None:
        return requested
    return min(requested, default)

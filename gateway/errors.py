"""gRPC status → HTTP status and the AIP-193 JSON error body.

Every error the gateway answers, from a backend or its own, has one shape:

    {"error": {"code": 404, "message": "...", "status": "NOT_FOUND",
               "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", ...}]}}

Details come from the backend's `grpc-status-details-bin` trailer (a serialized
`google.rpc.Status`). `Retry-After` is derived from `RetryInfo` on 429/503, and
401 answers carry `WWW-Authenticate: Bearer`.

A stale `If-Match` is 412 Precondition Failed: services refuse a change made
against an old etag with ABORTED (or FAILED_PRECONDITION) and an `ErrorInfo`
whose reason is `ETAG_MISMATCH`; every other ABORTED stays 409.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

DETAILS_TRAILER = "grpc-status-details-bin"
# ErrorInfo reasons answered with their own HTTP status, whatever the gRPC code says
# in general (by the codes they may come with).
PRECONDITION_REASONS = {"ETAG_MISMATCH"}
PRECONDITION_CODES = (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION)
WWW_AUTHENTICATE = 'Bearer realm="protomesh"'


def http_status_of(code: grpc.StatusCode) -> int:
    return HTTP_STATUS.get(code, 500)


@dataclass
class GatewayError(Exception):
    """An error answered in the AIP-193 shape (from the gateway or a backend)."""

    http_status: int
    status: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.http_status} {self.status}: {self.message}"

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.http_status,
                "message": self.message,
                "status": self.status,
                "details": self.details,
            }
        }

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.http_status == 401:
            headers.setdefault("www-authenticate", WWW_AUTHENTICATE)
        return headers


def detail(message: Message) -> dict[str, Any]:
    """A detail message in its JSON form with `@type`."""
    packed = any_pb2.Any()
    packed.Pack(message)
    return _any_to_json(packed)


def unauthenticated(message: str, challenge: str = WWW_AUTHENTICATE) -> GatewayError:
    """401 with a `WWW-Authenticate` challenge (RFC 6750; MCP adds resource metadata)."""
    return GatewayError(401, "UNAUTHENTICATED", message, headers={"www-authenticate": challenge})


def bad_request(message: str, field_name: str = "") -> GatewayError:
    violations = []
    if field_name:
        violations.append(
            error_details_pb2.BadRequest.FieldViolation(field=field_name, description=message)
        )
    details = [detail(error_details_pb2.BadRequest(field_violations=violations))]
    return GatewayError(400, "INVALID_ARGUMENT", message, details)


def not_found(path: str) -> GatewayError:
    return GatewayError(404, "NOT_FOUND", f"no route matches {path}")


def method_not_allowed(method: str, path: str, allowed: Sequence[str]) -> GatewayError:
    return GatewayError(
        405,
        "UNIMPLEMENTED",
        f"method {method} is not allowed on {path}",
        headers={"allow": ", ".join(sorted(set(allowed)))},
    )


def payload_too_large(limit: int) -> GatewayError:
    return GatewayError(413, "OUT_OF_RANGE", f"request body is larger than {limit} bytes")


def unsupported_media_type(got: str, expected: str) -> GatewayError:
    return GatewayError(
        415,
        "INVALID_ARGUMENT",
        f"content type {got or '(none)'!r} is not supported; send {expected}",
    )


def tls_required() -> GatewayError:
    """403 for a token sent over plain HTTP where TLS is required: refused before
    anything is forwarded (the token may have been read on the way already, so it
    should be revoked)."""
    info = error_details_pb2.ErrorInfo(reason="TLS_REQUIRED", domain="protomesh.io")
    return GatewayError(
        403,
        "PERMISSION_DENIED",
        "credentials over plain HTTP are refused: call this gateway over HTTPS",
        [detail(info)],
    )


def internal(message: str = "internal gateway error") -> GatewayError:
    return GatewayError(500, "INTERNAL", message)


def from_rpc_error(error: grpc.RpcError) -> GatewayError:
    """Maps a failed call (grpc.aio.AioRpcError or compatible) to a GatewayError."""
    code = _code_of(error)
    message = _details_of(error)
    trailers = _trailers_of(error)
    status = decode_status(trailers)
    details: list[dict[str, Any]] = []
    if status is not None:
        details = [_any_to_json(d) for d in status.details]
        message = status.message or message
    http = http_status_of(code)
    if (
        status is not None
        and code in PRECONDITION_CODES
        and _reasons(status) & PRECONDITION_REASONS
    ):
        http = 412
    headers: dict[str, str] = {}
    if http in (429, 503) and status is not None:
        retry = _retry_after(status)
        if retry is not None:
            headers["retry-after"] = str(retry)
    return GatewayError(http, code.name, message, details, headers)


def decode_status(trailers: Sequence[tuple[str, Any]]) -> status_pb2.Status | None:
    for key, value in trailers:
        if key == DETAILS_TRAILER and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:
                return None
    return None


def _reasons(status: status_pb2.Status) -> set[str]:
    reasons: set[str] = set()
    for packed in status.details:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            reasons.add(info.reason)
    return reasons


def _retry_after(status: status_pb2.Status) -> int | None:
    for packed in status.details:
        if packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            packed.Unpack(info)
            seconds = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
            return int(max(0, math.ceil(seconds)))
    return None


def _any_to_json(packed: any_pb2.Any) -> dict[str, Any]:
    try:
        value: dict[str, Any] = json_format.MessageToDict(packed)
        return value
    except (TypeError, KeyError, json_format.Error, DecodeError):
        # A detail type this process does not know: keep it, opaque.
        return {"@type": packed.type_url, "value": base64.b64encode(packed.value).decode()}


def _code_of(error: grpc.RpcError) -> grpc.StatusCode:
    code = getattr(error, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details_of(error: grpc.RpcError) -> str:
    details = getattr(error, "details", None)
    value = details() if callable(details) else None
    return value if isinstance(value, str) else ""


def _trailers_of(error: grpc.RpcError) -> Sequence[tuple[str, Any]]:
    trailers = getattr(error, "trailing_metadata", None)
    value = trailers() if callable(trailers) else None
    return tuple(value) if value else ()

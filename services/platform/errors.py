"""Typed domain errors and their one mapping to `google.rpc.Status`.

Handlers raise these; the error interceptor turns them into a gRPC status with
rich details (BadRequest, ErrorInfo, QuotaFailure, RetryInfo,
PreconditionFailure). Anything else becomes INTERNAL with no internals leaked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "protomesh.dev"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: a dotted path (`document.labels["Bad"]`) and why."""

    field: str
    description: str
    reason: str = ""


@dataclass(frozen=True)
class QuotaViolation:
    """One exhausted quota: which budget or limit, and what remains."""

    subject: str
    description: str


class ProtomeshError(Exception):
    """Base of every error a handler may raise on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[Message]:
        return []

    def to_status(self) -> status_pb2.Status:
        packed = []
        for detail in self.details():
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)


class InvalidArgument(ProtomeshError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, violations: Iterable[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.violations = list(violations)

    @classmethod
    def for_field(cls, field_path: str, description: str, reason: str = "") -> InvalidArgument:
        return cls(
            f"{field_path}: {description}", [FieldViolation(field_path, description, reason)]
        )

    def details(self) -> list[Message]:
        if not self.violations:
            return []
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description, reason=v.reason
                    )
                    for v in self.violations
                ]
            )
        ]


class _InfoError(ProtomeshError):
    """An error carrying a machine-readable `ErrorInfo` reason (e.g. `ETAG_MISMATCH`)."""

    def __init__(
        self, message: str, reason: str = "", metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[Message]:
        if not self.reason:
            return []
        return [
            error_details_pb2.ErrorInfo(
                reason=self.reason, domain=ERROR_DOMAIN, metadata=dict(self.metadata)
            )
        ]


class NotFound(_InfoError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(_InfoError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Aborted(_InfoError):
    code = grpc.StatusCode.ABORTED


class FailedPrecondition(_InfoError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(_InfoError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(_InfoError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(_InfoError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(_InfoError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Internal(_InfoError):
    code = grpc.StatusCode.INTERNAL


class ResourceExhausted(ProtomeshError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self,
        message: str,
        violations: Iterable[QuotaViolation] = (),
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.violations = list(violations)
        self.retry_after_seconds = retry_after_seconds

    def details(self) -> list[Message]:
        out: list[Message] = []
        if self.violations:
            out.append(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject=v.subject, description=v.description
                        )
                        for v in self.violations
                    ]
                )
            )
        if self.retry_after_seconds is not None:
            out.append(retry_info(self.retry_after_seconds))
        return out


def retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def internal_status(request_id: str) -> status_pb2.Status:
    """The status for an unexpected exception: no stack trace, a request id to look up."""
    return status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error (request id {request_id})",
    )

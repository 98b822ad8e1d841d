"""gRPC statuses from TaskService → A2A errors, for both bindings.

The a2a-sdk maps its error types to HTTP statuses (HTTP+JSON binding), to
`google.rpc.ErrorInfo` reasons, to JSON-RPC error codes and to JSON-RPC error
models through tables of its own. The caller-side statuses (unauthenticated,
forbidden, rate limited, unavailable) have no A2A type, so the gateway adds four
here and registers them in each table: 401/403/429/503 over HTTP+JSON, and
JSON-RPC codes -32040 to -32043 (A2A's own codes are -32001 to -32009; -32000 to
-32099 is JSON-RPC's range for server errors)."""

from __future__ import annotations

from typing import Any

import grpc
from a2a.server.context import ServerCallContext
from a2a.server.jsonrpc_models import JSONRPCError
from a2a.server.request_handlers import response_helpers
from a2a.utils import errors


class Unauthenticated(errors.A2AError):
    message = "Authentication required"


class PermissionDenied(errors.A2AError):
    message = "Permission denied"


class RateLimited(errors.A2AError):
    message = "Too many requests"


class Unavailable(errors.A2AError):
    message = "Service unavailable"


MAPPINGS: dict[type[errors.A2AError], errors.ErrorMapping] = {
    Unauthenticated: errors.ErrorMapping(401, "UNAUTHENTICATED", "UNAUTHENTICATED"),
    PermissionDenied: errors.ErrorMapping(403, "PERMISSION_DENIED", "PERMISSION_DENIED"),
    RateLimited: errors.ErrorMapping(429, "RESOURCE_EXHAUSTED", "RATE_LIMITED"),
    Unavailable: errors.ErrorMapping(503, "UNAVAILABLE", "UNAVAILABLE"),
}
# Where a binding that answers errors with 200 (JSON-RPC) puts the request's
# Starlette state in the call context, to learn that the call was unauthenticated.
REQUEST_STATE = "request_state"
JSON_RPC_CODES: dict[type[errors.A2AError], int] = {
    Unauthenticated: -32040,
    PermissionDenied: -32041,
    RateLimited: -32042,
    Unavailable: -32043,
}

errors.A2A_ERROR_MAPPING.update(MAPPINGS)
errors.A2A_ERROR_REASONS.update({kind: mapping.reason for kind, mapping in MAPPINGS.items()})
errors.A2A_REASON_TO_ERROR.update({mapping.reason: kind for kind, mapping in MAPPINGS.items()})
errors.JSON_RPC_ERROR_CODE_MAP.update(JSON_RPC_CODES)
response_helpers.EXCEPTION_MAP.update({kind: JSONRPCError for kind in JSON_RPC_CODES})


def a2a_error(exc: grpc.aio.AioRpcError, cancel: bool = False) -> errors.A2AError:
    """The A2A error for a failed TaskService call (`cancel`: the call was a cancel,
    where FAILED_PRECONDITION and ABORTED mean the task cannot be canceled)."""
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.NOT_FOUND:
        return errors.TaskNotFoundError(details)
    if cancel and code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED):
        return errors.TaskNotCancelableError(details)
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
        return errors.InvalidParamsError(details)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unauthenticated(details)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RateLimited(details)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(details)
    return errors.InternalError(f"{code.name}: {details}")


def call_error(
    exc: grpc.aio.AioRpcError, context: ServerCallContext, cancel: bool = False
) -> errors.A2AError:
    """`a2a_error`, marking the request's state (`unauthenticated`) when the call
    was refused as unauthenticated and the binding asked to know."""
    error = a2a_error(exc, cancel)
    state: Any = context.state.get(REQUEST_STATE)
    if isinstance(error, Unauthenticated) and state is not None:
        state.unauthenticated = True
    return error

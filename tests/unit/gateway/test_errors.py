"""gRPC status → HTTP mapping, AIP-193 bodies with decoded details, Retry-After,
WWW-Authenticate; header forwarding and deadlines."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway import errors
from gateway.errors import bad_request, from_rpc_error
from gateway.headers import metadata_from, request_id_of, timeout_from
from gateway.jsonmap import BindError

TABLE = [
    (grpc.StatusCode.CANCELLED, 499),
    (grpc.StatusCode.UNKNOWN, 500),
    (grpc.StatusCode.INVALID_ARGUMENT, 400),
    (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    (grpc.StatusCode.NOT_FOUND, 404),
    (grpc.StatusCode.ALREADY_EXISTS, 409),
    (grpc.StatusCode.PERMISSION_DENIED, 403),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    (grpc.StatusCode.FAILED_PRECONDITION, 400),
    (grpc.StatusCode.ABORTED, 409),
    (grpc.StatusCode.OUT_OF_RANGE, 400),
    (grpc.StatusCode.UNIMPLEMENTED, 501),
    (grpc.StatusCode.INTERNAL, 500),
    (grpc.StatusCode.UNAVAILABLE, 503),
    (grpc.StatusCode.DATA_LOSS, 500),
    (grpc.StatusCode.UNAUTHENTICATED, 401),
]


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailers: Any = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailers


@pytest.mark.parametrize(("code", "http"), TABLE)
def test_grpc_status_maps_to_http_status(code: grpc.StatusCode, http: int) -> None:
    error = from_rpc_error(FakeRpcError(code, "why"))
    assert error.http_status == http
    assert error.body() == {
        "error": {"code": http, "message": "why", "status": code.name, "details": []}
    }


def _status_trailer(*details: Any, code: int = 8, message: str = "busy") -> Any:
    status = status_pb2.Status(code=code, message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return (("grpc-status-details-bin", status.SerializeToString()),)


@pytest.mark.parametrize(
    ("code", "reason", "http"),
    [
        (grpc.StatusCode.ABORTED, "ETAG_MISMATCH", 412),
        (grpc.StatusCode.FAILED_PRECONDITION, "ETAG_MISMATCH", 412),
        (grpc.StatusCode.ABORTED, "PRICE_CHANGED", 409),
        (grpc.StatusCode.FAILED_PRECONDITION, "TASK_STATE", 400),
        (grpc.StatusCode.INVALID_ARGUMENT, "ETAG_MISMATCH", 400),
    ],
)
def test_only_an_etag_mismatch_is_412(code: grpc.StatusCode, reason: str, http: int) -> None:
    trailers = _status_trailer(
        error_details_pb2.ErrorInfo(reason=reason, domain="protomesh.dev"),
        code=code.value[0],
        message="changed",
    )
    error = from_rpc_error(FakeRpcError(code, "x", trailers))
    assert error.http_status == http
    assert error.body()["error"]["code"] == http
    assert error.status == code.name


def test_details_are_decoded_with_type_and_retry_after_is_rounded_up() -> None:
    trailers = _status_trailer(
        error_details_pb2.QuotaFailure(
            violations=[error_details_pb2.QuotaFailure.Violation(subject="t", description="d")]
        ),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1, nanos=1)),
    )
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "x", trailers))
    assert error.message == "busy"
    assert error.details[0]["@type"] == "type.googleapis.com/google.rpc.QuotaFailure"
    assert error.details[0]["violations"] == [{"subject": "t", "description": "d"}]
    assert error.details[1] == {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "1.000000001s",
    }
    assert error.response_headers()["retry-after"] == "2"


def test_unknown_detail_type_is_kept_opaque() -> None:
    status = status_pb2.Status(code=5, message="m")
    status.details.add(type_url="type.googleapis.com/x.Unknown", value=b"\x01")
    trailers = (("grpc-status-details-bin", status.SerializeToString()),)
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.NOT_FOUND, "m", trailers))
    assert error.details == [{"@type": "type.googleapis.com/x.Unknown", "value": "AQ=="}]


def test_garbage_details_trailer_is_ignored() -> None:
    trailers = (("grpc-status-details-bin", b"\xff\xff"),)
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.NOT_FOUND, "m", trailers))
    assert (error.http_status, error.details) == (404, [])


def test_unauthenticated_carries_www_authenticate() -> None:
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "no token"))
    assert error.response_headers()["www-authenticate"].startswith("Bearer")


def test_gateway_bad_request_has_field_violation() -> None:
    body = bad_request("bad", "pageSize").body()["error"]
    assert body["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "pageSize", "description": "bad"}],
        }
    ]


def test_forwarded_headers_become_metadata() -> None:
    headers = {
        "authorization": "Bearer t",
        "traceparent": "00-abc-def-01",
        "tracestate": "k=v",
        "grpc-metadata-tenant-hint": "acme",
        "grpc-metadata-blob-bin": "AAE=",
        "cookie": "secret",
    }
    metadata = dict(metadata_from(headers, "rid"))
    assert metadata == {
        "x-request-id": "rid",
        "authorization": "Bearer t",
        "traceparent": "00-abc-def-01",
        "tracestate": "k=v",
        "tenant-hint": "acme",
        "blob-bin": b"\x00\x01",
    }


@pytest.mark.parametrize(
    "header",
    [
        {"grpc-metadata-grpc-status": "0"},
        {"grpc-metadata-content-type": "x"},
        {"grpc-metadata-Bad Key": "x"},
        {"grpc-metadata-x-bin": "***"},
        {"grpc-metadata-x": "caf\u00e9"},
    ],
)
def test_unforwardable_metadata_header_is_rejected(header: dict[str, str]) -> None:
    with pytest.raises(BindError):
        metadata_from({k.lower() if "Bad" not in k else k: v for k, v in header.items()}, "r")


def test_request_id_is_kept_or_generated() -> None:
    assert request_id_of({"x-request-id": "abc"}) == "abc"
    assert len(request_id_of({})) == 32
    assert request_id_of({"x-request-id": "x" * 500}) != "x" * 500


@pytest.mark.parametrize(
    ("headers", "default", "expected"),
    [
        ({}, 5.0, 5.0),
        ({}, None, None),
        ({"grpc-timeout": "500m"}, 5.0, 0.5),
        ({"grpc-timeout": "2M"}, 5.0, 5.0),
        ({"grpc-timeout": "3S"}, None, 3.0),
        ({"x-timeout": "1.5"}, 5.0, 1.5),
        ({"x-timeout": "1.5s"}, 5.0, 1.5),
        ({"x-timeout": "60"}, 5.0, 5.0),
    ],
)
def test_timeout_header_is_capped_by_method_default(
    headers: dict[str, str], default: float | None, expected: float | None
) -> None:
    assert timeout_from(headers, default) == expected


@pytest.mark.parametrize(
    "headers",
    [{"grpc-timeout": "5"}, {"grpc-timeout": "1x"}, {"x-timeout": "soon"}, {"x-timeout": "-1"}],
)
def test_malformed_timeout_header_is_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(BindError):
        timeout_from(headers, 5.0)


@pytest.mark.parametrize(
    "header",
    [
        {"traceparent": "00-abc\t-def"},
        {"tracestate": "vendor=\u00e9"},
        {"authorization": "Bearer \x00token"},
    ],
)
def test_unusable_forwarded_headers_are_dropped_not_sent(header: dict[str, str]) -> None:
    """gRPC metadata values must be printable ASCII; sending one that is not fails the
    call inside the client (a 500). Trace headers are then ignored, and a broken
    Authorization counts as none (the service answers UNAUTHENTICATED)."""
    metadata = dict(metadata_from(header, "rid"))

    assert set(metadata) == {"x-request-id"}


@pytest.mark.parametrize("given", ["caf\u00e9", "a\tb", "x" * 129])
def test_unusable_request_ids_are_replaced(given: str) -> None:
    replaced = request_id_of({"x-request-id": given})

    assert replaced != given
    assert replaced.isascii()


def test_unauthenticated_carries_its_challenge() -> None:
    plain = errors.unauthenticated("no token")
    assert (plain.http_status, plain.status) == (401, "UNAUTHENTICATED")
    assert plain.response_headers() == {"www-authenticate": errors.WWW_AUTHENTICATE}
    mcp = errors.unauthenticated("no token", 'Bearer resource_metadata="x"')
    assert mcp.response_headers() == {"www-authenticate": 'Bearer resource_metadata="x"'}

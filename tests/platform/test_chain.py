"""Validation, error mapping, deadlines and request ids through the interceptor chain."""

from __future__ import annotations

import asyncio

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from protomesh.document.v1 import document_service_pb2 as pb
from tests.conftest import Mint, bearer


def _details(err: grpc.aio.AioRpcError) -> list[object]:
    status = rpc_status.from_call(err)
    assert status is not None
    out: list[object] = []
    for any_detail in status.details:
        for kind in (
            error_details_pb2.BadRequest,
            error_details_pb2.ErrorInfo,
            error_details_pb2.QuotaFailure,
            error_details_pb2.RetryInfo,
        ):
            if any_detail.Is(kind.DESCRIPTOR):
                message = kind()
                any_detail.Unpack(message)
                out.append(message)
    return out


async def _error(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError("call succeeded")


async def test_invalid_request_lists_field_violations_with_paths(stub, mint: Mint) -> None:
    request = pb.BatchGetDocumentsRequest(names=["documents/ok", "Bad Name"])
    err = await _error(stub.BatchGetDocuments(request, metadata=bearer(mint("t1"))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad_request,) = _details(err)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [v.field for v in bad_request.field_violations] == ["names[1]"]
    assert bad_request.field_violations[0].reason == "string.pattern"


async def test_nested_map_key_violation_path_names_the_key(probe_channel, mint: Mint) -> None:
    from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc

    stub = pb_grpc.DocumentServiceStub(probe_channel)
    request = pb.CreateDocumentRequest(document=pb.Document(content="x", labels={"Team": "a"}))
    err = await _error(stub.CreateDocument(request, metadata=bearer(mint("t1"))))
    (bad_request,) = _details(err)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field == 'document.labels["Team"]'


async def test_domain_error_maps_to_status_with_error_info(stub, mint: Mint) -> None:
    err = await _error(
        stub.GetDocument(
            pb.GetDocumentRequest(name="documents/conflict"), metadata=bearer(mint("t1"))
        )
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    (info,) = _details(err)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "REQUEST_ID_REUSED",
        "protomesh.dev",
        {"k": "v"},
    )


async def test_resource_exhausted_carries_quota_failure_and_retry_info(stub, mint: Mint) -> None:
    err = await _error(
        stub.GetDocument(pb.GetDocumentRequest(name="documents/quota"), metadata=bearer(mint("t1")))
    )
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    quota, retry = _details(err)
    assert isinstance(quota, error_details_pb2.QuotaFailure)
    assert quota.violations[0].subject == "budgets/b1"
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 2


async def test_unexpected_exception_is_internal_without_leaking_details(stub, mint: Mint) -> None:
    metadata = (*bearer(mint("t1")), ("x-request-id", "req-crash-1"))
    err = await _error(
        stub.GetDocument(pb.GetDocumentRequest(name="documents/crash"), metadata=metadata)
    )
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (err.details() or "")
    assert "req-crash-1" in (err.details() or "")
    assert ("x-request-id", "req-crash-1") in tuple(err.trailing_metadata() or ())


async def test_unimplemented_method_is_unimplemented(stub, mint: Mint) -> None:
    err = await _error(
        stub.DeleteDocument(
            pb.DeleteDocumentRequest(name="documents/x"), metadata=bearer(mint("t1"))
        )
    )
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_request_id_is_propagated_to_the_handler_and_echoed(stub, mint: Mint) -> None:
    call = stub.GetDocument(
        pb.GetDocumentRequest(name="documents/ok"),
        metadata=(*bearer(mint("t1")), ("x-request-id", "abc123")),
    )
    doc = await call
    assert doc.content == "abc123"
    assert ("x-request-id", "abc123") in tuple(await call.trailing_metadata())


async def test_request_id_is_generated_when_absent(stub, mint: Mint) -> None:
    doc = await stub.GetDocument(
        pb.GetDocumentRequest(name="documents/ok"), metadata=bearer(mint("t1"))
    )
    assert len(doc.content) == 32


async def test_default_deadline_from_the_contract_applies_without_a_client_deadline(
    stub, mint: Mint
) -> None:
    doc = await stub.GetDocument(
        pb.GetDocumentRequest(name="documents/ok"), metadata=bearer(mint("t1"))
    )
    # GetDocument declares default_deadline 5s.
    assert 4_000 < doc.size_bytes <= 5_000


async def test_client_deadline_is_visible_to_the_handler(stub, mint: Mint) -> None:
    doc = await stub.GetDocument(
        pb.GetDocumentRequest(name="documents/ok"), metadata=bearer(mint("t1")), timeout=1.5
    )
    # The wire encoding of grpc-timeout rounds up by a few milliseconds.
    assert 1_000 < doc.size_bytes <= 1_600


async def test_exceeded_deadline_is_deadline_exceeded_and_cancels_the_handler(
    stub, probe, mint: Mint
) -> None:
    probe.cancelled.clear()
    err = await _error(
        stub.GetDocument(
            pb.GetDocumentRequest(name="documents/sleep2"), metadata=bearer(mint("t1")), timeout=0.3
        )
    )
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(probe.cancelled.wait(), 2)

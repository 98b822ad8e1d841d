"""BatchCreateDocuments: per-item results, idempotent items, bounded streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from protomesh.document.v1 import document_service_pb2 as pb
from tests.integration.document.conftest import MAX_BATCH_ITEMS, new_doc


async def stream(
    items: Iterable[pb.BatchCreateDocumentsRequest],
) -> AsyncIterator[pb.BatchCreateDocumentsRequest]:
    for item in items:
        yield item


def item(
    content: str = "x", request_id: str = "", document_id: str = "", **fields: object
) -> pb.BatchCreateDocumentsRequest:
    return pb.BatchCreateDocumentsRequest(
        document=new_doc(content, **fields), request_id=request_id, document_id=document_id
    )


async def test_batch_reports_a_result_per_item_and_a_bad_item_fails_alone(
    stub, auth, settings
) -> None:
    reply = await stub.BatchCreateDocuments(
        stream(
            [
                item("first", request_id="r1"),
                item(""),  # no content
                item("x" * (settings.max_document_bytes + 1)),
                pb.BatchCreateDocumentsRequest(
                    document=new_doc("bad label", labels={"Bad Key": "v"})
                ),
                item("last", document_id="explicit"),
            ]
        ),
        metadata=auth,
    )
    assert [r.index for r in reply.results] == [0, 1, 2, 3, 4]
    assert (reply.created_count, reply.replayed_count, reply.failed_count) == (2, 0, 3)
    ok = [r for r in reply.results if not r.HasField("error")]
    assert [r.index for r in ok] == [0, 4]
    assert reply.results[4].name == "documents/explicit"
    assert reply.results[0].sequence < reply.results[4].sequence
    for failed in reply.results[1:4]:
        assert failed.error.code == code_pb2.INVALID_ARGUMENT
        assert failed.name == ""
    bad = error_details_pb2.BadRequest()
    assert reply.results[2].error.details[0].Unpack(bad)
    assert bad.field_violations[0].field == "document.content"
    got = await stub.GetDocument(pb.GetDocumentRequest(name=reply.results[0].name), metadata=auth)
    assert got.content == "first"


async def test_batch_replays_items_by_request_id(stub, auth) -> None:
    items = [item(f"doc {i}", request_id=f"batch-{i}") for i in range(3)]
    first = await stub.BatchCreateDocuments(stream(items), metadata=auth)
    again = await stub.BatchCreateDocuments(stream(items), metadata=auth)
    assert again.replayed_count == 3
    assert again.created_count == 0
    assert [r.name for r in again.results] == [r.name for r in first.results]
    assert all(r.replayed for r in again.results)


async def test_batch_item_reusing_a_request_id_with_new_content_fails(stub, auth) -> None:
    reply = await stub.BatchCreateDocuments(
        stream([item("a", request_id="dup"), item("b", request_id="dup")]), metadata=auth
    )
    assert reply.created_count == 1
    assert reply.results[1].error.code == code_pb2.ALREADY_EXISTS


async def test_empty_batch_is_an_empty_result(stub, auth) -> None:
    reply = await stub.BatchCreateDocuments(stream([]), metadata=auth)
    assert list(reply.results) == []


async def test_batch_over_the_item_limit_aborts_with_resource_exhausted_after_storing_the_rest(
    stub, auth
) -> None:
    items = [item(f"n{i}", request_id=f"lim-{i}") for i in range(MAX_BATCH_ITEMS + 5)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.BatchCreateDocuments(stream(items), metadata=auth)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(err.value)
    assert status is not None
    quota = error_details_pb2.QuotaFailure()
    assert status.details[0].Unpack(quota)
    listed = await stub.ListDocuments(pb.ListDocumentsRequest(page_size=1000), metadata=auth)
    assert len(listed.documents) == MAX_BATCH_ITEMS
    retry = await stub.BatchCreateDocuments(stream(items[:MAX_BATCH_ITEMS]), metadata=auth)
    assert retry.replayed_count == MAX_BATCH_ITEMS

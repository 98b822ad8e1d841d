"""CreateDocument: stored fields, defaults, idempotency by request id (AIP-155)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from protomesh.document.v1 import document_service_pb2 as pb
from tests.integration.document.conftest import new_doc
from tests.integration.document.helpers import error_info, field_violations


async def test_create_stores_fields_and_fills_output_only_ones(stub, auth) -> None:
    metadata = struct_pb2.Struct()
    metadata.update({"pages": 3, "tags": ["a", "b"], "nested": {"ok": True}})
    doc = await stub.CreateDocument(
        pb.CreateDocumentRequest(
            document=new_doc(
                "héllo",
                title="Greeting",
                labels={"team": "search"},
                metadata=metadata,
                source_uri="file:///tmp/a.txt",
            ),
            document_id="greeting",
        ),
        metadata=auth,
    )
    assert doc.name == "documents/greeting"
    assert (doc.title, doc.content, doc.mime_type) == ("Greeting", "héllo", "text/plain")
    assert dict(doc.labels) == {"team": "search"}
    assert doc.metadata == metadata
    assert doc.size_bytes == len("héllo".encode())
    assert doc.etag
    assert doc.sequence > 0
    assert doc.create_time.seconds > 0
    assert doc.update_time == doc.create_time
    fetched = await stub.GetDocument(pb.GetDocumentRequest(name=doc.name), metadata=auth)
    assert fetched == doc


async def test_create_ignores_output_only_fields_and_assigns_an_id(stub, auth) -> None:
    doc = await stub.CreateDocument(
        pb.CreateDocumentRequest(
            document=new_doc(
                name="documents/chosen-by-client",
                etag="forged",
                sequence=999_999_999,
                size_bytes=1,
                create_time=timestamp_pb2.Timestamp(seconds=1),
            )
        ),
        metadata=auth,
    )
    assert doc.name != "documents/chosen-by-client"
    assert doc.etag != "forged"
    assert doc.sequence != 999_999_999
    assert doc.size_bytes == len("hello world")
    assert doc.create_time.seconds > 1


async def test_create_without_content_is_invalid(stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateDocument(
            pb.CreateDocumentRequest(document=pb.Document(title="x")), metadata=auth
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_create_over_the_size_limit_names_document_content(stub, auth, settings) -> None:
    big = "x" * (settings.max_document_bytes + 1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateDocument(pb.CreateDocumentRequest(document=new_doc(big)), metadata=auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["document.content"]


async def test_create_with_an_existing_id_already_exists(stub, auth) -> None:
    request = pb.CreateDocumentRequest(document=new_doc(), document_id="taken")
    await stub.CreateDocument(request, metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateDocument(request, metadata=auth)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(err.value).reason == "DOCUMENT_EXISTS"


async def test_replayed_request_id_returns_the_original_document(stub, auth) -> None:
    request = pb.CreateDocumentRequest(document=new_doc("once"), request_id="req-1")
    first = await stub.CreateDocument(request, metadata=auth)
    again = await stub.CreateDocument(request, metadata=auth)
    assert again == first


async def test_reused_request_id_with_another_payload_already_exists(stub, auth) -> None:
    await stub.CreateDocument(
        pb.CreateDocumentRequest(document=new_doc("one"), request_id="req-2"), metadata=auth
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateDocument(
            pb.CreateDocumentRequest(document=new_doc("two"), request_id="req-2"), metadata=auth
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(err.value).reason == "REQUEST_ID_REUSED"


async def test_same_request_id_in_two_tenants_creates_two_documents(
    stub, tenant, as_tenant
) -> None:
    request = pb.CreateDocumentRequest(document=new_doc("shared"), request_id="req-3")
    a = await stub.CreateDocument(request, metadata=as_tenant(tenant))
    b = await stub.CreateDocument(request, metadata=as_tenant(tenant + "-other"))
    assert a.name != b.name


async def test_concurrent_creates_with_one_request_id_make_exactly_one_document(stub, auth) -> None:
    request = pb.CreateDocumentRequest(document=new_doc("race"), request_id="req-race")
    docs = await asyncio.gather(*(stub.CreateDocument(request, metadata=auth) for _ in range(12)))
    assert len({d.name for d in docs}) == 1
    assert len({d.sequence for d in docs}) == 1
    listed = await stub.ListDocuments(pb.ListDocumentsRequest(), metadata=auth)
    assert [d.name for d in listed.documents] == [docs[0].name]

"""Two tenants through gRPC: tenant B can neither see nor change tenant A's
documents, and learns nothing about their existence (NOT_FOUND, not
PERMISSION_DENIED)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from protomesh.document.v1 import document_service_pb2 as pb
from tests.integration.document.conftest import new_doc
from tests.integration.document.helpers import field_violations


@pytest.fixture
async def a_doc(stub, auth) -> pb.Document:  # type: ignore[no-untyped-def]
    return await stub.CreateDocument(  # type: ignore[no-any-return]
        pb.CreateDocumentRequest(document=new_doc("secret of A"), document_id="guessable"),
        metadata=auth,
    )


@pytest.fixture
def other(tenant, as_tenant):  # type: ignore[no-untyped-def]
    return as_tenant(tenant + "-b")


async def expect_not_found(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_other_tenant_cannot_get_a_guessed_name(stub, a_doc, other) -> None:
    await expect_not_found(stub.GetDocument(pb.GetDocumentRequest(name=a_doc.name), metadata=other))


async def test_other_tenant_batch_get_reports_the_name_missing(stub, a_doc, other) -> None:
    reply = await stub.BatchGetDocuments(
        pb.BatchGetDocumentsRequest(names=[a_doc.name]), metadata=other
    )
    assert list(reply.documents) == []
    assert list(reply.missing_names) == [a_doc.name]


async def test_other_tenant_lists_nothing(stub, a_doc, other) -> None:
    reply = await stub.ListDocuments(pb.ListDocumentsRequest(), metadata=other)
    assert list(reply.documents) == []


async def test_other_tenant_cannot_update_or_delete_even_with_the_etag(
    stub, auth, a_doc, other
) -> None:
    await expect_not_found(
        stub.UpdateDocument(
            pb.UpdateDocumentRequest(
                document=pb.Document(name=a_doc.name, title="pwned", etag=a_doc.etag),
                update_mask=field_mask_pb2.FieldMask(paths=["title"]),
            ),
            metadata=other,
        )
    )
    await expect_not_found(
        stub.DeleteDocument(
            pb.DeleteDocumentRequest(name=a_doc.name, etag=a_doc.etag), metadata=other
        )
    )
    still = await stub.GetDocument(pb.GetDocumentRequest(name=a_doc.name), metadata=auth)
    assert still == a_doc


async def test_other_tenant_may_use_the_same_id_independently(stub, auth, a_doc, other) -> None:
    mine = await stub.CreateDocument(
        pb.CreateDocumentRequest(document=new_doc("B's own"), document_id="guessable"),
        metadata=other,
    )
    assert mine.name == a_doc.name
    assert (
        await stub.GetDocument(pb.GetDocumentRequest(name=a_doc.name), metadata=auth)
    ).content == "secret of A"


async def test_page_token_of_one_tenant_is_invalid_for_another(stub, auth, other) -> None:
    for i in range(2):
        await stub.CreateDocument(pb.CreateDocumentRequest(document=new_doc(f"{i}")), metadata=auth)
    page = await stub.ListDocuments(pb.ListDocumentsRequest(page_size=1), metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListDocuments(
            pb.ListDocumentsRequest(page_size=1, page_token=page.next_page_token), metadata=other
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["page_token"]

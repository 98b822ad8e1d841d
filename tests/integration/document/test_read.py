"""GetDocument, BatchGetDocuments and ListDocuments (views, keyset pages,
filters, order, page tokens)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from protomesh.document.v1 import document_service_pb2 as pb
from tests.integration.document.conftest import new_doc
from tests.integration.document.helpers import field_violations


async def create(stub, auth, document_id: str, **fields) -> pb.Document:  # type: ignore[no-untyped-def]
    content = fields.pop("content", f"content of {document_id}")
    return await stub.CreateDocument(  # type: ignore[no-any-return]
        pb.CreateDocumentRequest(document=new_doc(content, **fields), document_id=document_id),
        metadata=auth,
    )


async def list_all(stub, auth, **request) -> list[str]:  # type: ignore[no-untyped-def]
    names: list[str] = []
    token = ""
    while True:
        page = await stub.ListDocuments(
            pb.ListDocumentsRequest(page_token=token, **request), metadata=auth
        )
        names += [d.name for d in page.documents]
        token = page.next_page_token
        if not token:
            return names


async def test_get_missing_document_is_not_found(stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetDocument(pb.GetDocumentRequest(name="documents/nope"), metadata=auth)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_get_with_a_malformed_name_is_invalid(stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetDocument(pb.GetDocumentRequest(name="files/x"), metadata=auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_basic_view_leaves_content_out(stub, auth) -> None:
    doc = await create(stub, auth, "viewed")
    basic = await stub.GetDocument(
        pb.GetDocumentRequest(name=doc.name, view=pb.DOCUMENT_VIEW_BASIC), metadata=auth
    )
    assert basic.content == ""
    assert basic.size_bytes == doc.size_bytes


async def test_batch_get_returns_input_order_and_reports_missing_names(stub, auth) -> None:
    await create(stub, auth, "b1")
    await create(stub, auth, "b2")
    reply = await stub.BatchGetDocuments(
        pb.BatchGetDocumentsRequest(names=["documents/b2", "documents/zz", "documents/b1"]),
        metadata=auth,
    )
    assert [d.name for d in reply.documents] == ["documents/b2", "documents/b1"]
    assert list(reply.missing_names) == ["documents/zz"]
    assert reply.documents[0].content == "content of b2"


async def test_batch_get_rejects_repeated_names(stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.BatchGetDocuments(
            pb.BatchGetDocumentsRequest(names=["documents/a", "documents/a"]), metadata=auth
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_defaults_to_newest_first_without_content(stub, auth) -> None:
    for i in range(3):
        await create(stub, auth, f"d{i}")
    page = await stub.ListDocuments(pb.ListDocumentsRequest(), metadata=auth)
    assert [d.name for d in page.documents] == ["documents/d2", "documents/d1", "documents/d0"]
    assert all(d.content == "" for d in page.documents)
    assert page.next_page_token == ""
    full = await stub.ListDocuments(
        pb.ListDocumentsRequest(view=pb.DOCUMENT_VIEW_FULL), metadata=auth
    )
    assert full.documents[0].content == "content of d2"


async def test_list_pages_cover_every_document_once_in_each_order(stub, auth) -> None:
    ids = [f"p{i:02d}" for i in range(11)]
    for document_id in ids:
        await create(stub, auth, document_id)
    await stub.UpdateDocument(
        pb.UpdateDocumentRequest(
            document=pb.Document(name="documents/p03", title="touched"),
            update_mask={"paths": ["title"]},
        ),
        metadata=auth,
    )
    names = [f"documents/{i}" for i in ids]
    assert await list_all(stub, auth, page_size=4, order_by="name") == names
    assert await list_all(stub, auth, page_size=3, order_by="name desc") == names[::-1]
    assert await list_all(stub, auth, page_size=4, order_by="create_time") == names
    by_update = await list_all(stub, auth, page_size=5, order_by="update_time desc")
    assert by_update[0] == "documents/p03"
    assert sorted(by_update) == names


async def test_list_pages_stay_stable_while_documents_are_added(stub, auth) -> None:
    for i in range(6):
        await create(stub, auth, f"s{i}")
    first = await stub.ListDocuments(
        pb.ListDocumentsRequest(page_size=3, order_by="create_time"), metadata=auth
    )
    await create(stub, auth, "s-late")
    second = await stub.ListDocuments(
        pb.ListDocumentsRequest(
            page_size=3, order_by="create_time", page_token=first.next_page_token
        ),
        metadata=auth,
    )
    assert [d.name for d in [*first.documents, *second.documents]] == [
        f"documents/s{i}" for i in range(6)
    ]


async def test_list_filters_by_labels_mime_type_title_and_time(stub, auth) -> None:
    a = await create(stub, auth, "fa", labels={"team": "search"}, mime_type="text/markdown")
    await asyncio.sleep(0.01)
    b = await create(stub, auth, "fb", labels={"team": "tasks"}, title="Roadmap")
    await create(stub, auth, "fc")

    async def names(text: str) -> set[str]:
        return set(await list_all(stub, auth, filter=text))

    assert await names('labels.team = "search"') == {a.name}
    assert await names('labels.team != "search"') == {b.name, "documents/fc"}
    assert await names("labels:team") == {a.name, b.name}
    assert await names('mime_type = "text/markdown"') == {a.name}
    assert await names('title = "Roadmap" OR labels.team = "search"') == {a.name, b.name}
    assert await names('NOT mime_type = "text/plain"') == {a.name}
    after_a = a.create_time.ToJsonString()
    assert await names(f'create_time > "{after_a}"') == {b.name, "documents/fc"}
    assert await names(f'update_time <= "{after_a}"') == {a.name}


async def test_list_with_bad_filter_syntax_names_the_position(stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListDocuments(
            pb.ListDocumentsRequest(filter='labels.team = "x" AND ('), metadata=auth
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["filter"]
    assert "position" in err.value.details()


async def test_list_with_unknown_order_is_invalid(stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListDocuments(pb.ListDocumentsRequest(order_by="content"), metadata=auth)
    assert field_violations(err.value) == ["order_by"]


async def test_page_token_reused_with_another_filter_or_order_is_invalid(stub, auth) -> None:
    for i in range(3):
        await create(stub, auth, f"r{i}")
    page = await stub.ListDocuments(pb.ListDocumentsRequest(page_size=1), metadata=auth)
    for changed in (
        {"filter": 'mime_type = "text/plain"'},
        {"order_by": "name"},
        {"view": pb.DOCUMENT_VIEW_FULL},
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListDocuments(
                pb.ListDocumentsRequest(page_size=1, page_token=page.next_page_token, **changed),
                metadata=auth,
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(err.value) == ["page_token"]


async def test_tampered_page_token_is_invalid(stub, auth) -> None:
    for i in range(2):
        await create(stub, auth, f"x{i}")
    page = await stub.ListDocuments(pb.ListDocumentsRequest(page_size=1), metadata=auth)
    token = page.next_page_token
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListDocuments(
            pb.ListDocumentsRequest(page_size=1, page_token=tampered), metadata=auth
        )
    assert field_violations(err.value) == ["page_token"]


async def test_page_size_above_the_maximum_is_invalid(stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListDocuments(pb.ListDocumentsRequest(page_size=1001), metadata=auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

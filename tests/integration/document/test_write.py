"""UpdateDocument (field masks, etags) and DeleteDocument."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from protomesh.document.v1 import document_service_pb2 as pb
from tests.integration.document.conftest import new_doc
from tests.integration.document.helpers import error_info, field_violations


async def create(stub, auth, **fields) -> pb.Document:  # type: ignore[no-untyped-def]
    return await stub.CreateDocument(  # type: ignore[no-any-return]
        pb.CreateDocumentRequest(document=new_doc(**fields)), metadata=auth
    )


def update(document: pb.Document, *paths: str) -> pb.UpdateDocumentRequest:
    return pb.UpdateDocumentRequest(
        document=document, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )


async def test_update_changes_only_masked_fields_and_the_etag(stub, auth) -> None:
    doc = await create(stub, auth, title="old", labels={"a": "1"})
    updated = await stub.UpdateDocument(
        update(pb.Document(name=doc.name, title="new", content="ignored"), "title"),
        metadata=auth,
    )
    assert updated.title == "new"
    assert updated.content == doc.content
    assert dict(updated.labels) == {"a": "1"}
    assert updated.etag != doc.etag
    assert updated.sequence > doc.sequence
    assert updated.create_time == doc.create_time
    assert updated.update_time.ToDatetime() > doc.update_time.ToDatetime()


async def test_update_content_recomputes_size(stub, auth) -> None:
    doc = await create(stub, auth)
    updated = await stub.UpdateDocument(
        update(pb.Document(name=doc.name, content="ünïcode"), "content"), metadata=auth
    )
    assert updated.content == "ünïcode"
    assert updated.size_bytes == len("ünïcode".encode())


async def test_update_with_star_replaces_every_updatable_field(stub, auth) -> None:
    doc = await create(stub, auth, title="t", labels={"a": "1"}, source_uri="x")
    metadata = struct_pb2.Struct()
    metadata.update({"k": "v"})
    updated = await stub.UpdateDocument(
        update(pb.Document(name=doc.name, content="new body", metadata=metadata), "*"),
        metadata=auth,
    )
    assert (updated.title, updated.content, updated.source_uri) == ("", "new body", "")
    assert dict(updated.labels) == {}
    assert updated.mime_type == "text/plain"
    assert updated.metadata == metadata


@pytest.mark.parametrize(
    ("paths", "fragment"),
    [
        (["colour"], "unknown field"),
        (["labels.team"], "unknown field"),
        (["etag"], "output only"),
        (["create_time"], "output only"),
        (["create_time.seconds"], "inside a field"),
        ([], "at least one"),
    ],
)
async def test_update_with_a_bad_mask_is_invalid(stub, auth, paths, fragment) -> None:
    doc = await create(stub, auth)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateDocument(update(pb.Document(name=doc.name), *paths), metadata=auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in err.value.details()
    assert field_violations(err.value) == ["update_mask"] * max(len(paths), 1)


async def test_update_without_a_mask_updates_every_populated_field(stub, auth) -> None:
    doc = await create(stub, auth, title="old", labels={"a": "1"}, source_uri="x")
    # AIP-134: no mask = the populated fields; name and etag are populated and left alone.
    updated = await stub.UpdateDocument(
        pb.UpdateDocumentRequest(
            document=pb.Document(name=doc.name, etag=doc.etag, title="new", labels={"b": "2"})
        ),
        metadata=auth,
    )
    assert (updated.title, dict(updated.labels)) == ("new", {"b": "2"})
    assert (updated.content, updated.source_uri) == (doc.content, "x")
    # The document as read, sent back changed: the same.
    doc = updated
    doc.content = "rewritten"
    again = await stub.UpdateDocument(pb.UpdateDocumentRequest(document=doc), metadata=auth)
    assert (again.content, again.title, again.source_uri) == ("rewritten", "new", "x")


async def test_update_without_a_mask_or_populated_field_is_invalid(stub, auth) -> None:
    doc = await create(stub, auth)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateDocument(
            pb.UpdateDocumentRequest(document=pb.Document(name=doc.name, etag=doc.etag)),
            metadata=auth,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["update_mask"]


async def test_update_with_star_and_other_paths_is_invalid(stub, auth) -> None:
    doc = await create(stub, auth, title="kept")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateDocument(
            update(pb.Document(name=doc.name, content="x"), "*", "title"), metadata=auth
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["update_mask"]
    current = await stub.GetDocument(pb.GetDocumentRequest(name=doc.name), metadata=auth)
    assert current.title == "kept"


async def test_update_clearing_content_is_invalid(stub, auth) -> None:
    doc = await create(stub, auth)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateDocument(update(pb.Document(name=doc.name), "content"), metadata=auth)
    assert field_violations(err.value) == ["document.content"]


async def test_update_with_stale_etag_is_aborted(stub, auth) -> None:
    doc = await create(stub, auth)
    await stub.UpdateDocument(update(pb.Document(name=doc.name, title="1"), "title"), metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateDocument(
            update(pb.Document(name=doc.name, title="2", etag=doc.etag), "title"), metadata=auth
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert error_info(err.value).reason == "ETAG_MISMATCH"


async def test_update_with_current_etag_succeeds(stub, auth) -> None:
    doc = await create(stub, auth)
    updated = await stub.UpdateDocument(
        update(pb.Document(name=doc.name, title="ok", etag=doc.etag), "title"), metadata=auth
    )
    assert updated.title == "ok"


async def test_update_of_a_missing_document_is_not_found(stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateDocument(
            update(pb.Document(name="documents/ghost", title="x"), "title"), metadata=auth
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_update_with_a_malformed_name_is_invalid(stub, auth) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateDocument(
            update(pb.Document(name="ghost", title="x"), "title"), metadata=auth
        )
    assert field_violations(err.value) == ["document.name"]


async def test_concurrent_updates_with_the_same_etag_have_exactly_one_winner(stub, auth) -> None:
    doc = await create(stub, auth)
    attempts = [
        stub.UpdateDocument(
            update(pb.Document(name=doc.name, title=f"writer {i}", etag=doc.etag), "title"),
            metadata=auth,
        )
        for i in range(10)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [o for o in outcomes if isinstance(o, pb.Document)]
    losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert {e.code() for e in losers} == {grpc.StatusCode.ABORTED}
    current = await stub.GetDocument(pb.GetDocumentRequest(name=doc.name), metadata=auth)
    assert current.title == winners[0].title


async def test_delete_then_get_and_second_delete_are_not_found(stub, auth) -> None:
    doc = await create(stub, auth)
    deleted = await stub.DeleteDocument(pb.DeleteDocumentRequest(name=doc.name), metadata=auth)
    assert deleted.sequence > doc.sequence
    for call in (
        stub.GetDocument(pb.GetDocumentRequest(name=doc.name), metadata=auth),
        stub.DeleteDocument(pb.DeleteDocumentRequest(name=doc.name), metadata=auth),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_delete_with_stale_etag_is_aborted_and_keeps_the_document(stub, auth) -> None:
    doc = await create(stub, auth)
    await stub.UpdateDocument(update(pb.Document(name=doc.name, title="1"), "title"), metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.DeleteDocument(
            pb.DeleteDocumentRequest(name=doc.name, etag=doc.etag), metadata=auth
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert error_info(err.value).reason == "ETAG_MISMATCH"
    await stub.GetDocument(pb.GetDocumentRequest(name=doc.name), metadata=auth)


async def test_delete_with_current_etag_succeeds(stub, auth) -> None:
    doc = await create(stub, auth)
    await stub.DeleteDocument(pb.DeleteDocumentRequest(name=doc.name, etag=doc.etag), metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetDocument(pb.GetDocumentRequest(name=doc.name), metadata=auth)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND

"""WatchChanges: the transactional outbox as a resumable, live, per-tenant feed."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2

from protomesh.document.v1 import document_service_pb2 as pb
from services.document.feed import APPLICATION_NAME
from tests.conftest import ALL_SCOPES
from tests.integration.document.conftest import HEARTBEAT_SECONDS, new_doc

WATCH_ALL = ALL_SCOPES + " documents:watch-all"


async def next_change(call, within: float = 5.0) -> pb.DocumentChange:  # type: ignore[no-untyped-def]
    """The next change on the stream within `within` seconds, skipping heartbeats."""
    async with asyncio.timeout(within):
        while True:
            message = await call.read()
            assert message is not grpc.aio.EOF
            if message.HasField("change"):
                return message.change  # type: ignore[no-any-return]


async def create(stub, auth, content: str = "c", **kw) -> pb.Document:  # type: ignore[no-untyped-def]
    return await stub.CreateDocument(  # type: ignore[no-any-return]
        pb.CreateDocumentRequest(document=new_doc(content), **kw), metadata=auth
    )


async def test_feed_replays_create_update_delete_in_order(stub, auth) -> None:
    doc = await create(stub, auth, "v1")
    updated = await stub.UpdateDocument(
        pb.UpdateDocumentRequest(
            document=pb.Document(name=doc.name, content="v2"),
            update_mask=field_mask_pb2.FieldMask(paths=["content"]),
        ),
        metadata=auth,
    )
    deleted = await stub.DeleteDocument(pb.DeleteDocumentRequest(name=doc.name), metadata=auth)
    call = stub.WatchChanges(pb.WatchChangesRequest(), metadata=auth)
    changes = [await next_change(call) for _ in range(3)]
    call.cancel()
    assert [c.type for c in changes] == [
        pb.CHANGE_TYPE_CREATED,
        pb.CHANGE_TYPE_UPDATED,
        pb.CHANGE_TYPE_DELETED,
    ]
    assert [c.sequence for c in changes] == [doc.sequence, updated.sequence, deleted.sequence]
    assert changes[0].document == doc
    assert changes[1].document == updated
    assert changes[2].document_name == doc.name
    assert not changes[2].HasField("document")
    assert all(c.tenant_id == "" for c in changes)


async def test_feed_delivers_live_changes_after_the_backlog(stub, auth) -> None:
    first = await create(stub, auth)
    call = stub.WatchChanges(pb.WatchChangesRequest(), metadata=auth)
    assert (await next_change(call)).sequence == first.sequence
    live = await create(stub, auth, "live")
    change = await next_change(
        call, within=HEARTBEAT_SECONDS * 0.8
    )  # woken by NOTIFY, not a re-check
    call.cancel()
    assert change.sequence == live.sequence
    assert change.document.content == "live"


async def test_resumed_feed_covers_every_sequence_exactly_once(stub, auth) -> None:
    created = [(await create(stub, auth, f"r{i}")).sequence for i in range(10)]
    call = stub.WatchChanges(pb.WatchChangesRequest(), metadata=auth)
    seen = [(await next_change(call)).sequence for _ in range(4)]
    call.cancel()  # the client goes away mid-stream
    created += [(await create(stub, auth, f"late{i}")).sequence for i in range(3)]
    resumed = stub.WatchChanges(pb.WatchChangesRequest(after_sequence=seen[-1]), metadata=auth)
    seen += [(await next_change(resumed)).sequence for _ in range(len(created) - 4)]
    idle = await asyncio.wait_for(resumed.read(), HEARTBEAT_SECONDS * 5)
    resumed.cancel()
    assert idle.heartbeat.head_sequence == created[-1]  # nothing more to come
    assert seen == created


async def test_idle_feed_sends_heartbeats_with_the_head_sequence(stub, auth) -> None:
    doc = await create(stub, auth)
    call = stub.WatchChanges(pb.WatchChangesRequest(), metadata=auth)
    assert (await next_change(call)).sequence == doc.sequence
    message = await asyncio.wait_for(call.read(), HEARTBEAT_SECONDS * 5)
    call.cancel()
    assert message.HasField("heartbeat")
    assert message.heartbeat.head_sequence == doc.sequence
    assert message.heartbeat.time.seconds > 0


async def test_omit_content_leaves_content_out_of_changes(stub, auth) -> None:
    doc = await create(stub, auth, "body")
    call = stub.WatchChanges(pb.WatchChangesRequest(omit_content=True), metadata=auth)
    change = await next_change(call)
    call.cancel()
    assert change.document.content == ""
    assert change.document.size_bytes == doc.size_bytes
    assert change.document.etag == doc.etag


async def test_tenant_feed_never_shows_another_tenants_changes(
    stub, tenant, auth, as_tenant
) -> None:
    other = as_tenant(tenant + "-b")
    await create(stub, other, "of B")
    call = stub.WatchChanges(pb.WatchChangesRequest(), metadata=auth)
    await create(stub, other, "of B, live")
    mine = await create(stub, auth, "of A")
    change = await next_change(call)
    call.cancel()
    assert change.sequence == mine.sequence


async def test_all_tenants_without_the_scope_is_permission_denied(stub, auth) -> None:
    call = stub.WatchChanges(pb.WatchChangesRequest(all_tenants=True), metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_all_tenants_feed_carries_every_tenant_with_its_id(
    stub, tenant, auth, as_tenant
) -> None:
    other_tenant = tenant + "-b"
    a = await create(stub, auth)
    b = await create(stub, as_tenant(other_tenant))
    indexer = as_tenant("_protomesh", scopes=WATCH_ALL)
    call = stub.WatchChanges(
        pb.WatchChangesRequest(all_tenants=True, after_sequence=a.sequence - 1), metadata=indexer
    )
    first, second = await next_change(call), await next_change(call)
    call.cancel()
    assert (first.sequence, first.tenant_id) == (a.sequence, tenant)
    assert (second.sequence, second.tenant_id) == (b.sequence, other_tenant)


async def test_live_feed_under_concurrent_writers_skips_and_repeats_nothing(
    stub, tenant, as_tenant
) -> None:
    """Writers commit out of order; a live watcher still sees every sequence
    once, in increasing order (sequences are drawn in commit order)."""
    writers = [as_tenant(f"{tenant}-{w}") for w in range(4)]
    indexer = as_tenant("_protomesh", scopes=WATCH_ALL)
    start = await create(stub, writers[0])
    call = stub.WatchChanges(
        pb.WatchChangesRequest(all_tenants=True, after_sequence=start.sequence, omit_content=True),
        metadata=indexer,
    )

    async def write(auth, n: int) -> list[int]:  # type: ignore[no-untyped-def]
        return [(await create(stub, auth, f"w{i}")).sequence for i in range(n)]

    batches = await asyncio.gather(*(write(w, 15) for w in writers))
    mine = {s for batch in batches for s in batch}
    seen: list[int] = []
    while not mine <= set(seen):
        change = await next_change(call)
        if change.tenant_id.startswith(tenant):
            seen.append(change.sequence)
    call.cancel()
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == len(mine)


async def test_listener_reconnects_after_its_connection_is_killed_and_live_delivery_resumes(
    document_server, stub, auth, postgres
) -> None:
    hub = document_server[0]._parts.servicer.hub
    await asyncio.wait_for(hub.listening.wait(), 5)
    owner = await asyncpg.connect(postgres)
    try:
        killed = await owner.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            APPLICATION_NAME,
        )
    finally:
        await owner.close()
    assert killed >= 1
    async with asyncio.timeout(5):
        while hub.listening.is_set():  # noqa: ASYNC110 (the hub has no "lost" event to await)
            await asyncio.sleep(0.01)
        await hub.listening.wait()
    call = stub.WatchChanges(pb.WatchChangesRequest(), metadata=auth)
    first = await create(stub, auth)
    assert (await next_change(call)).sequence == first.sequence
    live = await create(stub, auth)
    assert (await next_change(call, within=HEARTBEAT_SECONDS * 0.8)).sequence == live.sequence
    call.cancel()

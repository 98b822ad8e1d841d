"""The services behind PgBouncer in transaction mode (issue 14): what transaction
pooling takes away (session state, prepared statements across server
connections, LISTEN, startup parameters) and that the services do not depend on
it — their request pools share a few server connections, their LISTEN
connections and the task worker's sessions go direct."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from services.cost.feed import APPLICATION_NAME as COST_FEED
from services.document.feed import APPLICATION_NAME as DOCUMENT_FEED
from services.platform.config import Settings
from services.platform.db import create_pool, tenant_transaction
from services.task.hub import APPLICATION_NAME as TASK_EVENTS
from services.task.worker import create_worker_pool
from tests.conftest import ALL_SCOPES, Mint, bearer
from tests.integration.scale.conftest import DATABASE, POOL_SIZE, Mesh
from tests.integration.scale.pgbouncer import PgBouncer

LISTENERS = {DOCUMENT_FEED, COST_FEED, TASK_EVENTS, "protomesh-search-applied"}
LISTENERS |= {"protomesh-task-worker"}


def auth(mint: Mint, tenant: str, extra: str = "") -> tuple[tuple[str, str], ...]:
    return bearer(mint(tenant, scopes=f"{ALL_SCOPES} {extra}".strip()))


# -- what transaction pooling means --------------------------------------------------


async def test_tenant_context_ends_with_its_transaction_on_a_shared_server_connection(
    bouncer: PgBouncer,
) -> None:
    """`solo` has one server connection: two clients take turns on it. The tenant
    set by `tenant_transaction` (set_config(..., true)) is gone when the next client
    gets the connection; a session-level setting would have leaked to it."""
    dsn = bouncer.dsn("protomesh_app", "solo")
    first = await create_pool(dsn, 1, 1, statement_cache_size=0)
    second = await create_pool(dsn, 1, 1, statement_cache_size=0)
    try:
        async with tenant_transaction(first, "t-a") as conn:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            assert await conn.fetchval("SELECT current_setting('app.tenant_id', true)") == "t-a"
        row = await second.fetchrow(
            "SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id', true) AS tenant"
        )
        assert row is not None
        assert row["pid"] == backend, "both clients ran on the one server connection"
        assert row["tenant"] in (None, "")

        # What the services never do: a session-level setting outlives the transaction
        # and reaches whichever client runs next on that server connection (until
        # asyncpg's RESET ALL when the first client's connection goes back to its pool).
        async with first.acquire() as held:
            await held.execute("SELECT set_config('app.tenant_id', 't-a', false)")
            leaked = await second.fetchval("SELECT current_setting('app.tenant_id', true)")
        assert leaked == "t-a"
        assert await second.fetchval("SELECT current_setting('app.tenant_id', true)") == ""
    finally:
        await first.close()
        await second.close()


async def test_asyncpg_statement_cache_against_this_pgbouncer(bouncer: PgBouncer) -> None:
    """asyncpg names and caches prepared statements per client connection; before
    1.21 PgBouncer cannot follow them across server connections (Debian 12 ships
    1.18): the cache must be off (PROTOMESH_DB_STATEMENT_CACHE_SIZE=0). From 1.21,
    `max_prepared_statements` keeps them and the cache may stay on. (Eight clients
    on POOL_SIZE server connections: a statement prepared on one is missing on the
    others.)"""
    dsn = bouncer.dsn("protomesh_app", DATABASE)

    async def failures(cache_size: int) -> int:
        clients = [await asyncpg.connect(dsn, statement_cache_size=cache_size) for _ in range(8)]
        failed = 0

        async def run(i: int, conn: asyncpg.Connection) -> None:
            nonlocal failed
            for j in range(25):
                try:
                    await conn.fetchval(f"SELECT $1::int + {j % 5}", i)
                except asyncpg.PostgresError:
                    failed += 1

        try:
            await asyncio.gather(*(run(i, conn) for i, conn in enumerate(clients)))
        finally:
            await asyncio.gather(*(conn.close() for conn in clients))
        return failed

    assert await failures(0) == 0
    with_cache = await failures(100)
    if bouncer.binary.keeps_prepared_statements:
        assert with_cache == 0
    else:
        assert with_cache > 0, "PgBouncer < 1.21 should lose asyncpg's prepared statements"


async def test_worker_sessions_cannot_go_through_pgbouncer(pooled_settings: Settings) -> None:
    """A worker's connections carry `app.worker = on` from their startup packet, a
    parameter PgBouncer refuses: workers get the direct DSN."""
    with pytest.raises(asyncpg.PostgresError, match="unsupported startup parameter"):
        await create_worker_pool(pooled_settings, 2)


# -- the services through it ---------------------------------------------------------


async def test_documents_through_pgbouncer(mesh: Mesh, mint: Mint) -> None:
    stub = doc_grpc.DocumentServiceStub(mesh.documents)
    tenant, other = "t-" + uuid.uuid4().hex[:8], "t-" + uuid.uuid4().hex[:8]
    md = auth(mint, tenant)
    head = await _head(mesh)
    watch = stub.WatchChanges(
        doc_pb.WatchChangesRequest(after_sequence=head), metadata=md, timeout=20
    )
    request = doc_pb.CreateDocumentRequest(
        document_id="pooled",
        document=doc_pb.Document(title="Pooled", content="otters hold hands while sleeping"),
        request_id=str(uuid.uuid4()),
    )
    created_at = time.monotonic()
    created = await stub.CreateDocument(request, metadata=md)
    assert (await stub.CreateDocument(request, metadata=md)).name == created.name  # replayed
    # The change arrives by NOTIFY on the direct LISTEN connection: well before
    # the watch's 5 s fallback re-read.
    async for message in watch:
        if message.HasField("change"):
            assert message.change.document_name == created.name
            assert time.monotonic() - created_at < 2.0
            break
    watch.cancel()

    updated = await stub.UpdateDocument(
        doc_pb.UpdateDocumentRequest(
            document=doc_pb.Document(name=created.name, title="Renamed", etag=created.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        ),
        metadata=md,
    )
    assert updated.title == "Renamed"
    listed = await stub.ListDocuments(doc_pb.ListDocumentsRequest(), metadata=md)
    assert [d.name for d in listed.documents] == [created.name]
    # Row-level security through shared server connections: another tenant sees nothing.
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.GetDocument(
            doc_pb.GetDocumentRequest(name=created.name), metadata=auth(mint, other)
        )
    assert denied.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListDocuments(doc_pb.ListDocumentsRequest(), metadata=auth(mint, other))
    assert not listed.documents


async def test_search_reads_its_writes_through_pgbouncer(mesh: Mesh, mint: Mint) -> None:
    documents = doc_grpc.DocumentServiceStub(mesh.documents)
    search = search_grpc.SearchServiceStub(mesh.search)
    md = auth(mint, "t-" + uuid.uuid4().hex[:8])
    for i in range(5):
        doc = await documents.CreateDocument(
            doc_pb.CreateDocumentRequest(
                document=doc_pb.Document(title=f"n{i}", content=f"narwhal{i} tusks spiral")
            ),
            metadata=md,
        )
        found = await search.Search(
            search_pb.SearchRequest(
                query=f"narwhal{i}",
                min_sequence=doc.sequence,
                mode=search_pb.SEARCH_MODE_KEYWORD,
            ),
            metadata=md,
            timeout=10,
        )
        assert [r.document_name for r in found.results] == [doc.name]
        assert found.applied_sequence >= doc.sequence


async def test_tasks_run_and_stream_through_pgbouncer(mesh: Mesh, mint: Mint) -> None:
    stub = task_grpc.TaskServiceStub(mesh.tasks)
    md = auth(mint, "t-" + uuid.uuid4().hex[:8])
    task = task_pb.Task(type="noop")
    task.input.update({"progress_steps": 3})
    created = await stub.CreateTask(task_pb.CreateTaskRequest(task=task), metadata=md)
    events = []
    async for item in stub.WatchTask(
        task_pb.WatchTaskRequest(name=created.name), metadata=md, timeout=20
    ):
        if item.HasField("event"):
            events.append(item.event)
    done = await stub.GetTask(task_pb.GetTaskRequest(name=created.name), metadata=md)
    assert done.status.state == task_pb.TASK_STATE_COMPLETED
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)
    assert sum(e.HasField("progress") for e in events) == 3


async def test_cost_never_overspends_through_pgbouncer(mesh: Mesh, mint: Mint) -> None:
    """60 concurrent reservations against room for 20, with four server connections
    for every service: exactly 20 are admitted."""
    stub = cost_grpc.CostServiceStub(mesh.cost)
    md = auth(mint, "t-" + uuid.uuid4().hex[:8], "cost:admin")
    model = "pooled-" + uuid.uuid4().hex[:8]
    await stub.UpsertPrice(
        cost_pb.UpsertPriceRequest(
            price=cost_pb.Price(model=model, input_micros_per_mtok=1_000_000)
        ),
        metadata=md,
    )
    budget = await stub.CreateBudget(
        cost_pb.CreateBudgetRequest(
            budget=cost_pb.Budget(
                scope_kind=cost_pb.SCOPE_KIND_TENANT,
                period=cost_pb.PERIOD_MONTH,
                hard_limit_micros=20_000,
            )
        ),
        metadata=md,
    )

    async def reserve() -> cost_pb.Reservation | grpc.StatusCode:
        try:
            reservation: cost_pb.Reservation = await stub.Reserve(
                cost_pb.ReserveRequest(amount_micros=1000, ttl=duration_pb2.Duration(seconds=300)),
                metadata=md,
            )
            return reservation
        except grpc.aio.AioRpcError as exc:
            return exc.code()

    outcomes = await asyncio.gather(*(reserve() for _ in range(60)))
    refused = {o for o in outcomes if isinstance(o, grpc.StatusCode)}
    assert refused == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    admitted = [o for o in outcomes if isinstance(o, cost_pb.Reservation)]
    assert len(admitted) == 20
    settled = await asyncio.gather(
        *(
            stub.CommitReservation(
                cost_pb.CommitReservationRequest(
                    name=r.name, usage=cost_pb.TokenUsage(model=model, input_tokens=500)
                ),
                metadata=md,
            )
            for r in admitted
        )
    )
    assert sum(r.usage_record.amount_micros for r in settled) == 20 * 500
    got = await stub.GetBudget(cost_pb.GetBudgetRequest(name=budget.name), metadata=md)
    assert (got.spent_micros, got.reserved_micros) == (10_000, 0)


async def test_listeners_go_direct_and_requests_share_the_pool(
    mesh: Mesh, bouncer: PgBouncer
) -> None:
    """After the tests above: every LISTEN connection is a backend of its own, none a
    PgBouncer client; the request pools' many clients used at most POOL_SIZE server
    connections."""
    clients = bouncer.show("CLIENTS")
    servers = [s for s in bouncer.show("SERVERS") if s["database"] == "bouncer_it"]
    assert not LISTENERS & {c["application_name"] for c in clients}
    assert len([c for c in clients if c["database"] == "bouncer_it"]) > POOL_SIZE
    assert len(servers) <= POOL_SIZE
    through_bouncer = {int(s["remote_pid"]) for s in servers}
    owner = await asyncpg.connect(mesh.owner_dsn)
    try:
        rows = await owner.fetch(
            "SELECT pid, application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = ANY($1::text[])",
            sorted(LISTENERS),
        )
    finally:
        await owner.close()
    assert {r["application_name"] for r in rows} == LISTENERS
    assert not through_bouncer & {r["pid"] for r in rows}


async def _head(mesh: Mesh) -> int:
    owner = await asyncpg.connect(mesh.owner_dsn)
    try:
        head: int = await owner.fetchval("SELECT coalesce(max(sequence), 0) FROM document.changes")
        return head
    finally:
        await owner.close()

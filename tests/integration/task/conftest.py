"""TaskService on real PostgreSQL and real gRPC, with in-process workers (short
leases) and small fake SearchService / CostService servicers served on real
grpc.aio servers behind the platform's interceptor chain (so the worker's
delegated tokens are verified like any caller's)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as pb
from protomesh.task.v1 import task_service_pb2_grpc as pb_grpc
from services.platform.config import Settings, WorkerSettings
from services.platform.context import principal
from services.platform.db import create_pool
from services.platform.server import Runtime, ServiceParts, ServiceSpec, app_dsn
from services.task.extractive import ExtractiveGenerator, minilm_encoder
from services.task.generation import Generator
from services.task.runner import Worker
from services.task.service import SPEC
from services.task.store import TaskStore
from services.task.worker import build_worker, create_worker_pool
from services.task.workflows import Registry
from tests.conftest import Mint, bearer, eventually, running

# One MiniLM for the whole session (the default generator's sentence encoder).
MINILM = minilm_encoder()
FAST = WorkerSettings(
    count=4,
    lease_seconds=1.5,
    heartbeat_seconds=0.3,
    poll_seconds=0.5,
    reap_seconds=0.3,
    backoff_base_seconds=0.05,
    backoff_cap_seconds=0.2,
    cancel_grace_seconds=1.0,
    shutdown_grace_seconds=0.5,
)


# -- fake search -------------------------------------------------------------


@dataclass
class Chunk:
    document: str
    chunk_id: str
    title: str
    text: str
    labels: dict[str, str] = field(default_factory=dict)


class FakeSearch(search_grpc.SearchServiceServicer):
    """Keyword overlap over a per-tenant corpus; records who asked what."""

    def __init__(self) -> None:
        self.corpus: dict[str, list[Chunk]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.fail_with: grpc.StatusCode | None = None

    async def Search(self, request: search_pb.SearchRequest, context: Any) -> Any:
        who = principal()
        self.calls.append((who.tenant_id, who.user_id, request.query))
        if self.fail_with is not None:
            await context.abort(self.fail_with, "injected failure")
        wanted = set(request.query.lower().replace("?", "").split())
        scored = []
        for chunk in self.corpus.get(who.tenant_id, []):
            if any(chunk.labels.get(k) != v for k, v in request.filter.labels.items()):
                continue
            overlap = len(wanted & set(chunk.text.lower().replace(".", "").split()))
            if overlap:
                scored.append((overlap, chunk))
        scored.sort(key=lambda s: -s[0])
        size = request.page_size or 10
        return search_pb.SearchResponse(
            results=[
                search_pb.SearchResult(
                    document_name=c.document,
                    chunk_id=c.chunk_id,
                    title=c.title,
                    text=c.text,
                    snippet=c.text[:80],
                    score=float(s),
                )
                for s, c in scored[:size]
            ],
            mode=search_pb.SEARCH_MODE_HYBRID,
        )


# -- fake cost ---------------------------------------------------------------


class FakeCost(cost_grpc.CostServiceServicer):
    """Reserve/Commit/Release with a per-tenant hard limit; 1 µ per input token,
    2 µ per output token; model `unpriced` has no price (NOT_FOUND)."""

    def __init__(self) -> None:
        self.limit: dict[str, int] = {}
        self.spent: dict[str, int] = {}
        self.reservations: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self._next = 0

    def _price(self, usage_in: int, usage_out: int) -> int:
        return usage_in + 2 * usage_out

    async def Reserve(self, request: cost_pb.ReserveRequest, context: Any) -> Any:
        who = principal()
        self.calls.append(("Reserve", who.tenant_id, request))
        estimate = request.estimate
        if estimate.model == "unpriced":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no price")
        amount = self._price(estimate.input_tokens, estimate.max_output_tokens)
        held = sum(
            r["amount"]
            for r in self.reservations.values()
            if r["tenant"] == who.tenant_id and r["state"] == "active"
        )
        limit = self.limit.get(who.tenant_id)
        if limit is not None and self.spent.get(who.tenant_id, 0) + held + amount > limit:
            status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="hard limit")
            status.details.add().Pack(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject="budgets/tenant", description="hard limit reached"
                        )
                    ]
                )
            )
            await context.abort_with_status(rpc_status.to_status(status))
        self._next += 1
        name = f"reservations/r{self._next}"
        self.reservations[name] = {"tenant": who.tenant_id, "amount": amount, "state": "active"}
        return cost_pb.Reservation(
            name=name,
            amount_micros=amount,
            attribution=request.attribution,
            state=cost_pb.RESERVATION_STATE_ACTIVE,
        )

    async def CommitReservation(
        self, request: cost_pb.CommitReservationRequest, context: Any
    ) -> Any:
        who = principal()
        self.calls.append(("Commit", who.tenant_id, request))
        reservation = self.reservations[request.name]
        amount = self._price(request.usage.input_tokens, request.usage.output_tokens)
        if reservation["state"] == "active":
            reservation["state"] = "committed"
            self.spent[who.tenant_id] = self.spent.get(who.tenant_id, 0) + amount
        return cost_pb.Reservation(
            name=request.name,
            state=cost_pb.RESERVATION_STATE_COMMITTED,
            usage_record=cost_pb.UsageRecord(amount_micros=amount),
        )

    async def ReleaseReservation(
        self, request: cost_pb.ReleaseReservationRequest, context: Any
    ) -> Any:
        self.calls.append(("Release", principal().tenant_id, request))
        self.reservations[request.name]["state"] = "released"
        return cost_pb.Reservation(name=request.name, state=cost_pb.RESERVATION_STATE_RELEASED)


def fake_spec(name: str, servicer: Any, module: Any, grpc_module: Any, service: str) -> ServiceSpec:
    async def build(runtime: Runtime) -> ServiceParts:
        return ServiceParts(servicer=servicer)

    return ServiceSpec(
        name=name,
        descriptor=module.DESCRIPTOR.services_by_name[service],
        add_to_server=getattr(grpc_module, f"add_{service}Servicer_to_server"),
        build=build,
    )


@pytest.fixture(scope="session")
def fake_search() -> FakeSearch:
    return FakeSearch()


@pytest.fixture(scope="session")
def fake_cost() -> FakeCost:
    return FakeCost()


@pytest.fixture(scope="session")
async def task_settings(
    settings: Settings, fake_search: FakeSearch, fake_cost: FakeCost
) -> AsyncIterator[Settings]:
    """Settings whose search and cost addresses are the fakes' ephemeral ports."""
    search_spec = fake_spec("search", fake_search, search_pb, search_grpc, "SearchService")
    cost_spec = fake_spec("cost", fake_cost, cost_pb, cost_grpc, "CostService")
    async with (
        running(search_spec, settings) as (search_server, _),
        running(cost_spec, settings) as (cost_server, _),
    ):
        yield dataclasses.replace(
            settings, search_port=search_server.port, cost_port=cost_server.port
        )


@pytest.fixture(scope="session")
async def task_channel(task_settings: Settings) -> AsyncIterator[grpc.aio.Channel]:
    async with running(SPEC, task_settings) as (_, channel):
        yield channel


@pytest.fixture(scope="session")
def tasks(task_channel: grpc.aio.Channel) -> pb_grpc.TaskServiceStub:
    return pb_grpc.TaskServiceStub(task_channel)


@pytest.fixture(scope="session")
async def store(task_settings: Settings) -> AsyncIterator[TaskStore]:
    pool = await create_pool(app_dsn(task_settings), 1, 10)
    yield TaskStore(pool)
    await pool.close()


@pytest.fixture(scope="session")
async def owner_conn(task_settings: Settings) -> AsyncIterator[Any]:
    """A connection as the database owner (bypasses RLS), for arranging states."""
    import asyncpg

    conn = await asyncpg.connect(task_settings.database_url)
    yield conn
    await conn.close()


WorkerFactory = Callable[..., Any]


@pytest.fixture(scope="session")
async def worker_pool(task_settings: Settings) -> AsyncIterator[Any]:
    pool = await create_worker_pool(task_settings, 12)
    yield pool
    await pool.close()


@pytest.fixture
def workers(task_settings: Settings, worker_pool: Any) -> WorkerFactory:
    """workers(config=FAST, generator=None, registry=None) → async context manager
    running one in-process worker."""

    @asynccontextmanager
    async def _run(
        config: WorkerSettings = FAST,
        generator: Generator | None = None,
        registry: Registry | None = None,
        worker_id: str = "",
    ) -> AsyncIterator[Worker]:
        worker, clients = build_worker(
            worker_pool,
            task_settings,
            config,
            generator or ExtractiveGenerator(MINILM),
            registry,
            worker_id,
        )
        worker.start()
        try:
            yield worker
        finally:
            await worker.stop()
            await clients.close()

    return _run


class Client:
    """A tenant's view of TaskService."""

    def __init__(self, stub: pb_grpc.TaskServiceStub, token: str) -> None:
        self.stub = stub
        self.md = bearer(token)

    async def create(self, type_: str, input: dict[str, Any] | None = None, **kw: Any) -> pb.Task:
        request_id = kw.pop("request_id", "")
        task = pb.Task(type=type_, **kw)
        if input is not None:
            task.input.update(input)
        return await self.stub.CreateTask(
            pb.CreateTaskRequest(task=task, request_id=request_id), metadata=self.md
        )

    async def get(self, name: str, history_length: int = 0) -> pb.Task:
        return await self.stub.GetTask(
            pb.GetTaskRequest(name=name, history_length=history_length), metadata=self.md
        )

    async def wait(self, name: str, *states: int, within: float = 10.0) -> pb.Task:
        last: list[pb.Task] = []

        async def reached() -> bool:
            last[:] = [await self.get(name)]
            return last[0].status.state in states

        try:
            await eventually(reached, within, what=f"{name} in {states}")
        except AssertionError:
            task = last[0]
            raise AssertionError(
                f"{name} stuck in {pb.TaskState.Name(task.status.state)}: {task}"
            ) from None
        return last[0]

    async def watch(
        self, name: str, after_seq: int = 0, subscribed: asyncio.Event | None = None
    ) -> tuple[pb.Task, list[pb.TaskEvent]]:
        """The snapshot and the events up to the terminal one; sets `subscribed` when
        the snapshot arrives (the server subscribes to the task's events before it)."""
        snapshot = None
        events = []
        async for item in self.stub.WatchTask(
            pb.WatchTaskRequest(name=name, after_seq=after_seq), metadata=self.md, timeout=20
        ):
            if item.HasField("task"):
                snapshot = item.task
                if subscribed is not None:
                    subscribed.set()
            elif item.HasField("event"):
                events.append(item.event)
        assert snapshot is not None
        return snapshot, events


@pytest.fixture(scope="session")
def client_for(tasks: pb_grpc.TaskServiceStub, mint: Mint) -> Callable[..., Client]:
    def _client(tenant: str, user: str = "alice", **kw: Any) -> Client:
        return Client(tasks, mint(tenant, user, **kw))

    return _client

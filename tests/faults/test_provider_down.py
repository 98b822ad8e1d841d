"""The model provider goes down or slow, then comes back: the whole recovery
sequence, through the real HTTP clients, against a local OpenAI-compatible server.

Tasks: failing calls are retried by the `openai` SDK and, still failing, open the
generator's breaker;
while it is open calls fail fast without reaching the provider and the tasks
wait for the half-open probe instead of burning their attempts; a failed probe
re-opens it; once the provider answers the probe closes it and every task
completes, charged once. Search: a provider too slow for the embedder's timeout
opens the embedder's breaker, searches answer keyword results flagged degraded
(new documents are still found), and after the provider recovers the half-open
trial closes it, hybrid results return and the backlog gets embedded.

(tests/integration/search/test_isolation_and_degrade.py proves the search
breaker's rules with an in-process failing embedder; this is the end-to-end run.)"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as pb
from services.document.feed import WatchOptions
from services.document.service import make_spec as document_spec
from services.platform.config import Settings
from services.platform.resilience import CircuitBreaker
from services.search.embedders import (
    INDEX_DIMENSIONS,
    Embedder,
    GuardedEmbedder,
    HttpEmbedderConfig,
    OpenAICompatibleEmbedder,
)
from services.search.service import make_spec as search_spec
from services.task.openai_compat import OpenAICompatibleGenerator
from tests.conftest import Mint, running
from tests.faults.conftest import (
    FAST_WORKER,
    PRICED_MODEL,
    ModelProvider,
    System,
    Tenant,
    WorkerRunner,
    eventually,
    generator_for,
)
from tests.integration.search.conftest import (
    FAST_INDEXER,
    Stack,
    embedded,
    fresh_database,
    names,
    put,
    search,
)
from tests.unit.platform.fake_provider import Reply, fake_provider

COOLDOWN = 1.0
RATE_LIMIT_WAIT = 2.0
ACTIVE = 1


def attempt_gaps(task: pb.Task) -> list[float]:
    """Seconds between the end of each attempt and the start of the next."""
    return [
        b.start_time.ToDatetime().timestamp() - a.end_time.ToDatetime().timestamp()
        for a, b in zip(task.attempts, task.attempts[1:], strict=False)
    ]


@pytest.mark.timeout(60)
async def test_tasks_wait_out_an_open_breaker_and_complete_after_the_half_open_probe(
    system: System,
    owner: asyncpg.Connection,
    provider: ModelProvider,
    worker: WorkerRunner,
    mint: Mint,
) -> None:
    tenant = Tenant(system, mint, f"down-{uuid.uuid4().hex[:8]}")
    # A failure is a call that failed after the SDK's own retries: one such call opens it.
    breaker = CircuitBreaker("model provider", failure_threshold=1, reset_seconds=COOLDOWN)
    generator = generator_for(provider, max_retries=1, timeout_seconds=2.0, breaker=breaker)
    question = {"question": "Do otters hold hands?"}
    provider.mode = "down"
    # One slot: the tasks' attempts run one after another, so who probes is unambiguous.
    async with worker(generator, dataclasses.replace(FAST_WORKER, count=1)):
        first = await tenant.create_task("rag.answer", question)
        await eventually(lambda: breaker.state == "open", what="the breaker opening")
        assert provider.chat_requests == 2  # the attempt's call and the SDK's one retry

        # While open, an attempt fails at once, without reaching the provider.
        second = await tenant.create_task("rag.answer", question)

        async def failed_fast() -> bool:
            task = await tenant.get_task(second.name)
            return bool(task.attempts) and task.attempts[0].HasField("end_time")

        await eventually(failed_fast, what="the second task's first attempt")
        assert provider.chat_requests == 2

        # The half-open probe (one request, no SDK retry) finds the provider still down:
        # open again, still no task lost.
        await eventually(lambda: provider.chat_requests == 3, what="the half-open probe")
        await eventually(lambda: breaker.state == "open", what="the breaker re-opening")
        provider.mode = "up"

        done = [
            await tenant.wait_task(t.name, pb.TASK_STATE_COMPLETED, within=10)
            for t in (first, second)
        ]
    assert breaker.state == "closed"
    assert provider.chat_requests == 5  # 2 failed + 1 failed probe + 2 answers: none while open

    first_done, second_done = [await tenant.get_task(t.name, history_length=500) for t in done]
    assert "HTTP 503" in first_done.attempts[0].error.message
    assert "circuit open" in second_done.attempts[0].error.message
    for task in (first_done, second_done):
        assert len(task.attempts) == 3
        assert not task.attempts[-1].HasField("error")
        # Each retry waited for the breaker to half-open, not just the (short) backoff.
        assert all(gap >= COOLDOWN * 0.8 for gap in attempt_gaps(task)), attempt_gaps(task)
        statuses = [e.status_update.state for e in task.history if e.HasField("status_update")]
        assert statuses.count(pb.TASK_STATE_COMPLETED) == 1
        assert len([e for e in task.history if e.HasField("cost")]) == 1

    # Every failed attempt gave its reservation back; each task was charged once.
    for task in done:
        states = await owner.fetch(
            "SELECT state FROM cost.reservations WHERE tenant_id = $1 AND task = $2",
            tenant.name,
            task.name,
        )
        assert ACTIVE not in [r["state"] for r in states]
        charged = await owner.fetchval(
            "SELECT count(*) FROM cost.usage_records WHERE tenant_id = $1 AND task = $2",
            tenant.name,
            task.name,
        )
        assert charged == 1


@pytest.mark.timeout(60)
async def test_a_rate_limited_provider_is_unavailable_and_the_task_waits_its_retry_after(
    system: System, worker: WorkerRunner, mint: Mint
) -> None:
    """A 429 whose Retry-After is longer than the SDK waits (max_retries=0 here):
    the attempt fails UNAVAILABLE, and the task is not retried before the provider
    said — the wait reaches the worker through ProviderUnavailable."""
    tenant = Tenant(system, mint, f"limited-{uuid.uuid4().hex[:8]}")
    script = [Reply(429, {"retry-after": str(RATE_LIMIT_WAIT)})]
    async with fake_provider(script=script, answer="Otters hold hands [1].") as limited:
        breaker = CircuitBreaker("model provider", failure_threshold=5, reset_seconds=30)
        generator = OpenAICompatibleGenerator(
            limited.url, PRICED_MODEL, max_retries=0, timeout_seconds=2.0, breaker=breaker
        )
        async with worker(generator, dataclasses.replace(FAST_WORKER, count=1)):
            created = await tenant.create_task("rag.answer", {"question": "Do otters?"})
            await tenant.wait_task(created.name, pb.TASK_STATE_COMPLETED, within=20)
    task = await tenant.get_task(created.name)
    assert len(task.attempts) == 2
    error = task.attempts[0].error
    assert error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert "HTTP 429" in error.message
    assert attempt_gaps(task)[0] >= RATE_LIMIT_WAIT * 0.95
    assert len(limited.requests_to("/chat/completions")) == 2  # nothing retried sooner
    assert breaker.state == "closed"


# -- search ----------------------------------------------------------------------------


@dataclasses.dataclass
class EmbedderOutage:
    stack: Stack
    breaker: CircuitBreaker


@pytest.fixture
async def http_embedded_search(
    settings: Settings, migrated: str, provider: ModelProvider
) -> AsyncIterator[EmbedderOutage]:
    """Documents + search (indexer on) in a database of their own, embedding through
    the real HTTP embedder client at the local provider."""
    dsn = await fresh_database(migrated, "faults_search")
    local = dataclasses.replace(settings, database_url=dsn)
    breaker = CircuitBreaker("embedder", failure_threshold=2, reset_seconds=COOLDOWN)
    config = HttpEmbedderConfig(
        base_url=provider.url,
        model="text-embedding-3-small",
        dimensions=INDEX_DIMENSIONS,
        timeout_seconds=0.3,
        max_attempts=1,
    )

    def http_embedder() -> Embedder:
        return OpenAICompatibleEmbedder(config)  # the guard's breaker is its only one

    def guard(inner: Embedder) -> GuardedEmbedder:
        return GuardedEmbedder(inner, breaker)

    async with running(document_spec(WatchOptions(heartbeat_seconds=0.3)), local) as (
        doc_server,
        doc_channel,
    ):
        searching = dataclasses.replace(local, document_port=doc_server.port)
        spec = search_spec(http_embedder, FAST_INDEXER, run_indexer=True, guarded=guard)
        async with running(spec, searching) as (server, channel):
            stack = Stack(
                local,
                doc_grpc.DocumentServiceStub(doc_channel),
                search_grpc.SearchServiceStub(channel),
                server,
                None,  # type: ignore[arg-type]  # no in-process switch: the provider is it
                None,  # type: ignore[arg-type]  # (the breaker is in EmbedderOutage)
                dsn,
            )
            yield EmbedderOutage(stack, breaker)


@pytest.mark.timeout(60)
async def test_search_degrades_to_keyword_while_the_embedder_is_slow_and_recovers(
    http_embedded_search: EmbedderOutage, provider: ModelProvider, mint: Mint
) -> None:
    stack, breaker = http_embedded_search.stack, http_embedded_search.breaker
    auth = (("authorization", f"Bearer {mint('slow-' + uuid.uuid4().hex[:8])}"),)
    before = await put(stack, auth, "otters", "Sea otters hold hands while they sleep.")
    await embedded(stack, auth)
    healthy = await search(stack, auth, "otters sleep", min_sequence=before.sequence)
    assert (healthy.degraded, healthy.mode) == (False, search_pb.SEARCH_MODE_HYBRID)

    provider.mode, provider.slow_seconds = "slow", 1.0  # beyond the embedder's 0.3 s timeout
    during = await put(stack, auth, "beavers", "Beavers build dams from sleepy branches.")
    queries = iter(f"otters sleep {i}" for i in range(100))  # distinct: no query cache
    while breaker.state.value != "open":
        found = await search(stack, auth, next(queries), min_sequence=during.sequence)
        assert found.degraded
        assert found.mode == search_pb.SEARCH_MODE_KEYWORD
        assert names(found) == ["documents/otters"]

    # Open: keyword results without waiting on the provider, which is not called at all.
    calls = provider.embedding_requests
    found = await search(stack, auth, "sleepy branches beavers")
    assert found.degraded
    assert "circuit breaker" in found.degraded_reason
    assert names(found) == ["documents/beavers"]  # written during the outage, found by keyword
    assert provider.embedding_requests == calls
    status = await stack.search.GetIndexStatus(search_pb.GetIndexStatusRequest(), metadata=auth)
    assert status.degraded
    assert status.pending_embedding_count >= 1

    provider.mode = "up"

    async def hybrid_again() -> bool:
        found = await search(stack, auth, next(queries))
        return not found.degraded and found.mode == search_pb.SEARCH_MODE_HYBRID

    await eventually(hybrid_again, within=COOLDOWN * 5, every=0.1, what="hybrid results again")
    assert breaker.state.value == "closed"
    await embedded(stack, auth)  # the backlog written during the outage is embedded
    vector = await search(stack, auth, "beavers dams", mode=search_pb.SEARCH_MODE_VECTOR)
    assert not vector.degraded
    assert names(vector)[0] == "documents/beavers"

"""The wait behind `protomesh ingest` and `protomesh search reindex`: phases in
order, each done when its count reaches 0, fed by a plain function returning
IndexStatus messages and a fake clock (nothing sleeps)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from cli.waiting import (
    REBUILD,
    REEMBED,
    VECTOR,
    Phase,
    StatusSource,
    Waited,
    WaitTimeout,
    degraded_warning,
    keyword_phase,
    wait_for,
)
from protomesh.search.v1 import search_service_pb2 as pb


def statuses(*given: pb.IndexStatus) -> Callable[[], pb.IndexStatus]:
    """A status source answering `given` in order, then the last one forever."""
    remaining = list(given)

    def source() -> pb.IndexStatus:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return source


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def wait(
    phases: Iterable[Phase],
    source: StatusSource,
    time: FakeTime,
    timeout_seconds: float = 10.0,
    reports: list[tuple[str, int, int]] | None = None,
) -> Waited:
    def report(phase: Phase, completed: int, total: int) -> None:
        if reports is not None:
            reports.append((phase.name, completed, total))

    return await wait_for(
        list(phases),
        source,
        timeout_seconds=timeout_seconds,
        poll_seconds=0.25,
        report=report,
        clock=time.clock,
        sleep=time.sleep,
    )


async def test_keyword_then_vector_with_progress_per_phase() -> None:
    time = FakeTime()
    reports: list[tuple[str, int, int]] = []
    source = statuses(
        pb.IndexStatus(applied_sequence=100),
        pb.IndexStatus(applied_sequence=104, pending_embedding_count=3),
        pb.IndexStatus(applied_sequence=110, pending_embedding_count=6),
        pb.IndexStatus(applied_sequence=110, pending_embedding_count=2),
        pb.IndexStatus(applied_sequence=111, pending_embedding_count=0),
    )

    waited = await wait([keyword_phase(110), VECTOR], source, time, reports=reports)

    assert waited.complete
    assert reports == [
        ("keyword", 0, 10),
        ("keyword", 4, 10),
        ("keyword", 10, 10),
        ("vector", 0, 6),  # the phase starts from the status that ended the last one
        ("vector", 4, 6),
        ("vector", 6, 6),
    ]
    assert time.sleeps == [0.25] * 4


async def test_nothing_to_wait_for_returns_without_sleeping() -> None:
    time = FakeTime()
    reports: list[tuple[str, int, int]] = []

    waited = await wait(
        [keyword_phase(7), VECTOR],
        statuses(pb.IndexStatus(applied_sequence=9)),
        time,
        reports=reports,
    )

    assert waited.complete
    assert waited.status.applied_sequence == 9
    assert reports == [("keyword", 0, 0), ("vector", 0, 0)]
    assert time.sleeps == []


async def test_a_degraded_index_stops_the_vector_phase_but_not_the_keyword_one() -> None:
    time = FakeTime()
    breaker = "embedder circuit breaker is open: connection refused"
    source = statuses(
        pb.IndexStatus(applied_sequence=1, degraded=True, degraded_reason=breaker),
        pb.IndexStatus(
            applied_sequence=5, pending_embedding_count=4, degraded=True, degraded_reason=breaker
        ),
    )

    waited = await wait([keyword_phase(5), VECTOR], source, time)

    assert not waited.complete
    assert waited.stopped is VECTOR
    assert waited.remaining == 4
    assert len(time.sleeps) == 1  # one poll in the keyword phase, none in the vector one
    warning = degraded_warning(waited)
    assert breaker in warning
    assert "4 chunks still pending" in warning
    assert "Keyword search works" in warning
    assert "\n" not in warning


async def test_degraded_with_nothing_pending_is_simply_done() -> None:
    waited = await wait(
        [keyword_phase(1), VECTOR],
        statuses(pb.IndexStatus(applied_sequence=1, degraded=True)),
        FakeTime(),
    )

    assert waited.complete


async def test_the_deadline_raises_with_what_is_left() -> None:
    time = FakeTime()
    source = statuses(pb.IndexStatus(applied_sequence=3))

    with pytest.raises(WaitTimeout) as raised:
        await wait([keyword_phase(10), VECTOR], source, time, timeout_seconds=1.0)

    assert raised.value.phase.name == "keyword"
    assert raised.value.remaining == 7
    assert str(raised.value) == (
        "timed out after 1s waiting for the documents to become keyword-searchable "
        "(7 changes to go)"
    )
    assert time.now == pytest.approx(1.0)  # the last sleep is cut to the deadline


async def test_an_async_source_is_awaited() -> None:
    answers = iter([pb.IndexStatus(pending_embedding_count=2), pb.IndexStatus()])

    async def source() -> pb.IndexStatus:
        return next(answers)

    waited = await wait([VECTOR], source, FakeTime())

    assert waited.complete


async def test_reindex_waits_for_the_rebuild_then_the_embeddings() -> None:
    time = FakeTime()
    reports: list[tuple[str, int, int]] = []
    source = statuses(
        pb.IndexStatus(rebuild_pending_document_count=2, pending_embedding_count=9),
        pb.IndexStatus(rebuild_pending_document_count=0, pending_embedding_count=12),
        pb.IndexStatus(pending_embedding_count=0),
    )

    waited = await wait([REBUILD, REEMBED], source, time, reports=reports)

    assert waited.complete
    assert reports == [
        ("re-chunk", 0, 2),
        ("re-chunk", 2, 2),
        ("re-embed", 0, 12),
        ("re-embed", 12, 12),
    ]

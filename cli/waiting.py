"""Waiting until the search index has caught up, for `protomesh ingest` and
`protomesh search reindex`.

The wait is a list of phases, each done when a count read from
`SearchService.GetIndexStatus` reaches 0:

- keyword: change-feed sequences the indexer still has to apply before the
  highest sequence we wrote (`applied_sequence >= sequence` means keyword-searchable);
- vector: the tenant's chunks still waiting for an embedding (tenant-wide, so
  it also waits for chunks of other writes of the same tenant);
- re-chunk: documents a requested rebuild has not reached yet.

`wait_for` is the logic alone: it polls a status source (any function returning
an `IndexStatus`, or an awaitable of one), reports (completed, total) per phase,
gives up on an embedder-bound phase while the index is degraded (the embedder's
breaker is open: it would not move), and raises `WaitTimeout` past the deadline.
`watch` runs it against the service with a Rich progress bar per phase.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from services.platform.channels import Endpoint

POLL_SECONDS = 0.3
STATUS_RPC_SECONDS = 5.0

StatusSource = Callable[[], pb.IndexStatus | Awaitable[pb.IndexStatus]]
Report = Callable[["Phase", int, int], None]


@dataclass(frozen=True)
class Phase:
    """One thing to wait for: done when `remaining(status)` is 0."""

    name: str  # on the progress bar
    unit: str  # what `remaining` counts
    remaining: Callable[[pb.IndexStatus], int]
    waiting_for: str  # "... waiting for <this>" in messages
    # Progress needs the embedder: stop waiting (instead of hanging) while it is down.
    needs_embedder: bool = False


def keyword_phase(sequence: int) -> Phase:
    """Done once the indexer has applied the change feed up to `sequence`."""
    return Phase(
        "keyword",
        "changes",
        lambda status: max(0, sequence - status.applied_sequence),
        "the documents to become keyword-searchable",
    )


VECTOR = Phase(
    "vector",
    "chunks",
    lambda status: status.pending_embedding_count,
    "the tenant's chunks to be embedded",
    needs_embedder=True,
)
REBUILD = Phase(
    "re-chunk",
    "documents",
    lambda status: status.rebuild_pending_document_count,
    "the documents to be re-chunked",
    needs_embedder=True,
)
REEMBED = Phase(
    "re-embed",
    "chunks",
    lambda status: status.pending_embedding_count,
    "the tenant's chunks to be re-embedded",
    needs_embedder=True,
)


@dataclass(frozen=True)
class Waited:
    """How a wait ended: every phase done, or `stopped` at a phase the degraded
    index cannot finish now (`remaining` of its units left)."""

    status: pb.IndexStatus
    stopped: Phase | None = None
    remaining: int = 0

    @property
    def complete(self) -> bool:
        return self.stopped is None


class WaitTimeout(Exception):
    """The deadline passed with `remaining` units of `phase` left."""

    def __init__(self, phase: Phase, remaining: int, timeout: float) -> None:
        self.phase = phase
        self.remaining = remaining
        self.timeout = timeout
        super().__init__(
            f"timed out after {timeout:g}s waiting for {phase.waiting_for} "
            f"({remaining} {phase.unit} to go)"
        )


async def _read(source: StatusSource) -> pb.IndexStatus:
    status = source()
    if inspect.isawaitable(status):
        return await status
    return status


async def wait_for(
    phases: Sequence[Phase],
    source: StatusSource,
    *,
    timeout_seconds: float,
    poll_seconds: float = POLL_SECONDS,
    report: Report | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Waited:
    """Polls `source` until every phase, in order, has nothing remaining.

    A phase's total is the most it had remaining while watched, so `report`
    gets (phase, total - remaining, total) after every poll. Returns early with
    `stopped` set when an embedder-bound phase still has work while the index
    reports `degraded`; raises WaitTimeout once `timeout_seconds` have passed."""
    deadline = clock() + timeout_seconds
    status = await _read(source)
    for phase in phases:
        total = 0
        while True:
            remaining = max(0, phase.remaining(status))
            total = max(total, remaining)
            if report is not None:
                report(phase, total - remaining, total)
            if remaining == 0:
                break
            if phase.needs_embedder and status.degraded:
                return Waited(status, phase, remaining)
            left = deadline - clock()
            if left <= 0:
                raise WaitTimeout(phase, remaining, timeout_seconds)
            await sleep(min(poll_seconds, left))
            status = await _read(source)
    return Waited(status)


def degraded_warning(waited: Waited) -> str:
    """The one line to print when a wait stopped at a degraded index."""
    assert waited.stopped is not None
    reason = waited.status.degraded_reason or "its circuit breaker is open"
    return (
        f"warning: stopped waiting for {waited.stopped.waiting_for}: the embedder is "
        f"unavailable ({reason}); {waited.remaining} {waited.stopped.unit} still pending. "
        "Keyword search works now; vector results follow once the embedder recovers."
    )


async def watch(
    target: Endpoint,
    token: str,
    phases: Sequence[Phase],
    console: Console,
    timeout_seconds: float,
    poll_seconds: float = POLL_SECONDS,
) -> Waited:
    """`wait_for` against SearchService at `target`, with a progress bar per phase
    (completed/total and elapsed time)."""
    metadata = (("authorization", f"Bearer {token}"),)
    progress = Progress(
        TextColumn("[bold]{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        console=console,
    )
    bars: dict[str, TaskID] = {}

    def report(phase: Phase, completed: int, total: int) -> None:
        if phase.name not in bars:
            bars[phase.name] = progress.add_task(phase.name, total=total, unit=phase.unit)
        progress.update(bars[phase.name], completed=completed, total=total)

    async with target.open() as channel:
        stub = pb_grpc.SearchServiceStub(channel)

        async def status() -> pb.IndexStatus:
            found: pb.IndexStatus = await stub.GetIndexStatus(
                pb.GetIndexStatusRequest(), metadata=metadata, timeout=STATUS_RPC_SECONDS
            )
            return found

        with progress:
            return await wait_for(
                phases,
                status,
                timeout_seconds=timeout_seconds,
                poll_seconds=poll_seconds,
                report=report,
            )

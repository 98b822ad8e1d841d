"""What a workflow sees while it runs: `TaskContext` (its task, progress/log/
output/artifact events, checkpoints, cooperative cancellation, downstream
services acting as the submitter, metered generation) and the outcomes a
workflow may raise besides returning normally."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import asyncpg
from google.rpc import code_pb2

from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.document.v1 import document_service_pb2_grpc as document_grpc
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as pb
from services.platform import telemetry
from services.platform.logs import get_logger
from services.task.convert import to_json
from services.task.generation import Generation, Generator, Prompt, count_tokens
from services.task.metering import BudgetExhausted, Hold, Meter
from services.task.store import Lease, Row, TaskStore

T = TypeVar("T")
log = get_logger("protomesh.task.execution")
Metadata = tuple[tuple[str, str], ...]


class Canceled(Exception):
    """The task was canceled; the workflow stops at the next check."""


class InputRequired(Exception):
    """The workflow needs the caller's answer (SendTaskInput) before it goes on."""


class PermanentFailure(Exception):
    """An error retrying cannot fix (bad input, missing permission): FAILED at once.
    `code` is the google.rpc.Code stored with the task."""

    def __init__(self, message: str, code: int = code_pb2.FAILED_PRECONDITION) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Downstream:
    """Stubs of the services a workflow calls and the metadata that makes each call
    act as the task's submitter (tenant + user token, trace, request id)."""

    search: search_grpc.SearchServiceStub
    documents: document_grpc.DocumentServiceStub
    cost: cost_grpc.CostServiceStub
    metadata: Callable[[], Metadata]
    timeout_seconds: float = 30.0


class TaskContext:
    """One attempt at one task, as its workflow sees it. Every write is fenced by
    the lease: a worker that lost it gets `Fenced` and stops."""

    def __init__(
        self,
        store: TaskStore,
        lease: Lease,
        row: Row,
        downstream: Downstream,
        generator: Generator,
        meter: Meter,
        cancel: asyncio.Event,
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.lease = lease
        self.downstream = downstream
        self.generator = generator
        self.meter = meter
        self.cancel = cancel
        self.cancel_reason = ""
        self.lease_seconds = lease_seconds
        self.name = f"tasks/{row['id']}"
        self.type: str = row["type"]
        self.input: dict[str, Any] = dict(row["input"] or {})
        self.inputs: list[dict[str, Any]] = list(row["inputs"] or [])
        self.checkpoint: dict[str, Any] = dict(row["checkpoint"] or {})
        self.attempt: int = row["attempts"]
        self.user_id: str = row["submitter"]
        self.cost_limit_micros: int = row["cost_limit_micros"]
        self.cost_spent_micros: int = row["cost_spent_micros"]

    # -- events -------------------------------------------------------------

    async def progress(self, step: str, percent: int) -> None:
        self.check_cancel()
        body = to_json(pb.Progress(step=step, percent=percent))
        await self.store.append_event(self.lease, "progress", body, step=step, percent=percent)

    async def log(self, message: str, level: str = "info") -> None:
        await self.store.append_event(
            self.lease, "log", to_json(pb.LogLine(level=level, message=message))
        )

    async def output(self, text: str) -> None:
        if text:
            await self.store.append_event(
                self.lease, "output_delta", to_json(pb.OutputDelta(text=text))
            )

    async def put_artifact(
        self, artifact: pb.Artifact, append: bool = False, last_chunk: bool = True
    ) -> None:
        update = pb.ArtifactUpdate(artifact=artifact, append=append, last_chunk=last_chunk)
        await self.store.put_artifact(self.lease, to_json(artifact), to_json(update), append)

    async def save_checkpoint(self, checkpoint: Mapping[str, Any]) -> None:
        await self.store.save_checkpoint(self.lease, checkpoint)
        self.checkpoint = dict(checkpoint)

    # -- control ------------------------------------------------------------

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Canceled(self.cancel_reason or "canceled")

    async def call(self, awaitable: Awaitable[T]) -> T:
        """Awaits a long call, abandoning it as soon as the task is canceled."""
        self.check_cancel()
        work = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self.cancel.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            self.check_cancel()
        return work.result()

    def need_input(self, message: str) -> NoReturn:
        raise InputRequired(message)

    def latest_input(self) -> dict[str, Any] | None:
        return self.inputs[-1] if self.inputs else None

    # -- metered generation -------------------------------------------------

    async def generate(self, prompt: Prompt, max_output_tokens: int = 512) -> Generation:
        """Reserve → generate (streaming OutputDelta events) → commit, or release
        on failure/cancellation. The commit happens only while the lease holds.
        The hold is recorded with the task while it is open, so that a worker
        dying mid-call does not leave it reserved until its ttl (the reaper or
        the next attempt releases it)."""
        model = self.generator.model
        hold = await self.meter.reserve(
            model, count_tokens(prompt.text(), model), max_output_tokens
        )
        committed = False
        try:
            if hold.name:
                await self.store.hold_reservation(self.lease, hold.name)
            limit = self.cost_limit_micros
            if limit and self.cost_spent_micros + hold.amount_micros > limit:
                raise BudgetExhausted(
                    f"task cost limit {limit} micros reached "
                    f"(spent {self.cost_spent_micros}, next call needs {hold.amount_micros})"
                )
            with telemetry.span(
                f"chat {model}",
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": model,
                    "gen_ai.request.max_tokens": max_output_tokens,
                },
            ) as span:
                generation = await self.call(
                    self.generator.generate(prompt, self.output, max_output_tokens)
                )
                span.set_attributes(
                    {
                        "gen_ai.response.model": generation.model,
                        "gen_ai.usage.input_tokens": generation.usage.input_tokens,
                        "gen_ai.usage.output_tokens": generation.usage.output_tokens,
                    }
                )
            # Fence before spending: a worker that lost the lease must not commit.
            await self.store.heartbeat(self.lease, self.lease_seconds)
            usage = generation.usage
            amount = await self.meter.commit(
                hold, generation.model, usage.input_tokens, usage.output_tokens, usage.estimated
            )
            committed = True
        finally:
            if not committed:
                await asyncio.shield(self.meter.release(hold))
            if hold.name:
                await asyncio.shield(self._forget(hold))
        delta = pb.CostDelta(
            model=generation.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            amount_micros=amount,
            estimated=usage.estimated,
        )
        await self.store.append_event(self.lease, "cost", to_json(delta), cost_micros=amount)
        self.cost_spent_micros += amount
        return generation

    async def _forget(self, hold: Hold) -> None:
        """Drops a settled hold from the task; should that fail, the orphan sweep
        tries to release it later, which a settled reservation shrugs off."""
        try:
            await self.store.forget_reservations(self.lease.task_id, [hold.name])
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("settled reservation not forgotten", task=self.name, error=str(exc))

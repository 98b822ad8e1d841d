"""The task loop: claim, run, heartbeat, reap, retry, cancel, shut down.

`Worker` runs up to `WorkerSettings.count` tasks at a time from the shared queue,
in any event loop (`services.task.worker` is the process around it; tests run it
in their own loop). It is separate from the servicer, which only accepts,
reports and steers tasks.

- Claim: `FOR UPDATE SKIP LOCKED`, highest priority then oldest, in batches of
  free slots; woken by NOTIFY `task_queue`, with a fallback timer that also
  covers tasks waiting out a retry backoff (`run_after`).
- Lease: each claim bumps `lease_epoch`, the fencing token; a heartbeat extends
  the lease every `heartbeat_seconds`. Every write (events, artifacts,
  checkpoints, completion, cost commits) matches only while owner + epoch
  still hold, so a worker that was presumed dead cannot write after its task
  was re-claimed. Any worker reaps expired leases (back to the queue, or
  FAILED/CANCELED) and releases the cost holds their attempts left open.
- Retries: exponential backoff with full jitter, capped attempts; after the
  last one the task is FAILED with its error and attempt history (dead letter).
  A status in `PERMANENT_CODES` fails the task at once.
- Cancellation: CancelTask sets a flag and NOTIFYs `task_cancel`; the workflow
  sees it between steps and inside long calls (`TaskContext.call`), and is
  stopped hard after `cancel_grace_seconds` if it does not cooperate.
- Per-type timeout: the workflow's `timeout_seconds`, recorded with the task.
- Shutdown: `stop()` stops claiming, waits `shutdown_grace_seconds` for running
  tasks, then puts the rest back in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc

from services.platform import telemetry
from services.platform.config import WorkerSettings
from services.platform.logs import get_logger
from services.platform.notify import Listener
from services.platform.resilience import backoff_delay
from services.task import metrics, states
from services.task.downstream import DownstreamFactory
from services.task.execution import (
    Canceled,
    Downstream,
    InputRequired,
    PermanentFailure,
    TaskContext,
)
from services.task.generation import Generator
from services.task.metering import BudgetExhausted, Hold, Meter
from services.task.openai_compat import ProviderUnavailable
from services.task.store import Fenced, Lease, Row, TaskStore
from services.task.workflows import Registry

log = get_logger("protomesh.task.worker")

COST = frozenset({"cost:write"})  # what releasing a reservation takes
QUEUE_DEPTH_INTERVAL_SECONDS = 5.0

# Statuses a retry cannot fix (bad input, missing rights, an unpriced model, a
# method the backend lacks): the task fails at once instead of burning attempts.
PERMANENT_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


def _error(code: grpc.StatusCode, message: str) -> dict[str, Any]:
    """A task's stored error: the status's google.rpc.Code number and a message."""
    return {"code": code.value[0], "message": message}


@dataclass
class _Running:
    ctx: TaskContext
    work: asyncio.Task[str] | None = None
    lost: bool = False
    hard_stop: asyncio.TimerHandle | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Worker:
    """Runs up to `config.count` tasks at a time from the shared queue."""

    def __init__(
        self,
        store: TaskStore,
        dsn: str,
        registry: Registry,
        generator: Generator,
        downstream: DownstreamFactory,
        config: WorkerSettings,
        worker_id: str = "",
    ) -> None:
        self.store = store
        self.dsn = dsn
        self.registry = registry
        self.generator = generator
        self.downstream = downstream
        self.config = config
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._running: dict[uuid.UUID, _Running] = {}
        self._started: dict[uuid.UUID, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        # Wake-ups: a task queued (claim now, not at the next poll), a task cancelled
        # (check its lease now); after a reconnect, look at the queue at once.
        self._listener = Listener(dsn, "protomesh-task-worker")
        self._listener.on("task_queue", lambda _payload: self._wake.set())
        self._listener.on("task_cancel", self._on_cancel)
        self._listener.on_connect(self._wake.set)
        self._main: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Runs the worker in the background of the current event loop."""
        self._main = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """Stops claiming, lets running tasks finish within the shutdown grace, then
        puts the rest back in the queue."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.config.shutdown_grace_seconds)
        for running in list(self._running.values()):
            if running.work is not None and not running.work.done():
                running.lost = True  # our own shutdown: requeue below, not a failure
                running.work.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        if self._main is not None:
            self._main.cancel()
            await asyncio.gather(self._main, return_exceptions=True)

    async def run(self) -> None:
        helpers = [
            asyncio.create_task(self._listener.run()),
            asyncio.create_task(self._reap_loop()),
            asyncio.create_task(self._sample_queue_depth()),
        ]
        try:
            while not self._stopping:
                await self._claim_and_wait()
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _sample_queue_depth(self) -> None:
        """Refreshes the queue-depth gauge (one GROUP BY) every few seconds."""
        seen: set[tuple[str, str]] = set()
        while True:
            try:
                depth = await self.store.queue_depth()
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("queue depth not sampled", error=str(exc))
            else:
                current = metrics.queue_depth_samples(depth, self.registry.types())
                for labels in seen - current.keys():
                    metrics.QUEUE_DEPTH.labels(*labels).set(0)
                for labels, count in current.items():
                    metrics.QUEUE_DEPTH.labels(*labels).set(count)
                seen |= current.keys()
            await asyncio.sleep(QUEUE_DEPTH_INTERVAL_SECONDS)

    def _on_cancel(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            running = self._running.get(uuid.UUID(payload))
            if running is not None:
                self._spawn(self._check_lease(running))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _claim_and_wait(self) -> None:
        free = self.config.count - len(self._running)
        timeout = self.config.poll_seconds
        self._wake.clear()
        if free > 0:
            try:
                claimed = await self.store.claim(self.id, free, self.config.lease_seconds)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("claim failed", error=str(exc))
                await asyncio.sleep(self.config.poll_seconds)
                return
            for row in claimed:
                self._start_task(row)
            if claimed and len(claimed) == free:
                return  # maybe more queued: claim again once a slot frees up
            if not claimed:
                due = await self._next_due()
                if due is not None:
                    timeout = min(timeout, max(due, 0.005))
            elif claimed:
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _next_due(self) -> float | None:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            due = await self.store.next_due()
            if due is not None:
                return (due.timestamp() - time.time()) + 0.001
        return None

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_seconds)
            try:
                if await self.store.reap_expired():
                    self._wake.set()
                for row in await self.store.orphaned_holds():
                    lease = Lease(row["id"], row["tenant_id"], self.id, row["lease_epoch"])
                    await self._release_holds(row, self.downstream.for_task(row, lease, COST))
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("reaper failed", error=str(exc))

    async def _release_holds(self, row: Row, downstream: Downstream) -> None:
        """Gives back the cost reservations a dead attempt of this task left open (its
        worker died during a model call), then forgets them: a lost attempt must not
        keep the budget reserved until the reservations' ttl."""
        names = list(row["held_reservations"] or ())
        if not names:
            return
        meter = Meter(downstream.cost, downstream.metadata, row["submitter"], "", "")
        for name in names:
            await meter.release(Hold(name, 0))  # idempotent; a settled one is left alone
        await self.store.forget_reservations(row["id"], names)
        log.info("released the holds of a lost attempt", task=str(row["id"]), reservations=names)

    # -- one task ------------------------------------------------------------

    def _start_task(self, row: Row) -> None:
        lease = Lease(row["id"], row["tenant_id"], self.id, row["lease_epoch"])
        workflow = self.registry.get(row["type"])
        needed = workflow.scopes if workflow is not None else frozenset()
        downstream = self.downstream.for_task(row, lease, needed)
        meter = Meter(
            downstream.cost,
            downstream.metadata,
            row["submitter"],
            f"tasks/{row['id']}",
            f"task-{row['id']}-{lease.epoch}",
        )
        ctx = TaskContext(
            self.store,
            lease,
            row,
            downstream,
            self.generator,
            meter,
            asyncio.Event(),
            self.config.lease_seconds,
        )
        running = _Running(ctx)
        self._running[lease.task_id] = running
        self._spawn(self._execute(row, lease, running))

    async def _execute(self, row: Row, lease: Lease, running: _Running) -> None:
        heartbeat = asyncio.create_task(self._heartbeat_loop(running))
        self._started[lease.task_id] = time.monotonic()
        try:
            # Taken over from an attempt that died mid-call before the reaper's sweep.
            await self._release_holds(row, running.ctx.downstream)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("holds of a lost attempt not released", task=str(row["id"]), error=str(exc))
        attributes = {
            "protomesh.task.name": f"tasks/{lease.task_id}",
            "protomesh.task.type": str(row["type"]),
            "protomesh.task.attempt": int(row["attempts"]),
        }
        try:
            # Continues the trace of the CreateTask call (its span is the parent).
            with telemetry.span(
                f"task.run {row['type']}", attributes, row["traceparent"], row["tracestate"]
            ):
                await self._outcome(row, lease, running)
        except Fenced as exc:
            log.warning(
                "fenced: lease lost, result discarded",
                task=str(lease.task_id),
                epoch=lease.epoch,
                error=str(exc),
            )
        except Exception:
            log.exception("could not record the outcome", task=str(lease.task_id))
        finally:
            heartbeat.cancel()
            if running.hard_stop is not None:
                running.hard_stop.cancel()
            self._running.pop(lease.task_id, None)
            self._started.pop(lease.task_id, None)
            self._wake.set()

    async def _outcome(self, row: Row, lease: Lease, running: _Running) -> None:
        ctx = running.ctx
        workflow = self.registry.get(row["type"])
        if workflow is None:
            await self._finish(
                row,
                lease,
                states.FAILED,
                f"no workflow for type {row['type']!r}",
                _error(grpc.StatusCode.UNIMPLEMENTED, f"unknown task type {row['type']!r}"),
            )
            return
        running.work = asyncio.create_task(workflow.run(ctx))
        try:
            try:
                async with asyncio.timeout(float(row["timeout_seconds"])):
                    message = await asyncio.shield(running.work)
            except asyncio.CancelledError:
                if running.lost and self._stopping:
                    await self._requeue_on_shutdown(lease)
                    return
                if running.lost:
                    raise Fenced("lease lost while running") from None
                if ctx.cancel.is_set():
                    raise Canceled(ctx.cancel_reason or "canceled") from None
                raise
            except TimeoutError:
                running.work.cancel()
                await asyncio.gather(running.work, return_exceptions=True)
                raise
        except Canceled as exc:
            await self._finish(row, lease, states.CANCELED, str(exc) or "canceled")
        except InputRequired as exc:
            await self._finish(row, lease, states.INPUT_REQUIRED, str(exc))
        except BudgetExhausted as exc:
            if str(ctx.input.get("on_budget_exhausted", "")) == "fail":
                await self._finish(
                    row,
                    lease,
                    states.FAILED,
                    str(exc),
                    _error(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)),
                )
            else:
                await self._finish(
                    row,
                    lease,
                    states.INPUT_REQUIRED,
                    f'{exc}; raise the budget and send any input (e.g. {{"continue": true}}) '
                    "to resume",
                )
        except PermanentFailure as exc:
            await self._finish(
                row, lease, states.FAILED, str(exc), {"code": exc.code, "message": str(exc)}
            )
        except Fenced:
            raise
        except TimeoutError:
            limit = row["timeout_seconds"]
            await self._retry_or_fail(
                row, lease, grpc.StatusCode.DEADLINE_EXCEEDED, f"timed out after {limit:g}s"
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            message = f"{code.name}: {exc.details()}"
            if code in PERMANENT_CODES:
                await self._finish(row, lease, states.FAILED, message, _error(code, message))
            else:
                await self._retry_or_fail(row, lease, code, message)
        except ProviderUnavailable as exc:
            # Not before the provider's breaker lets a call through, nor before the
            # provider's own Retry-After (when the SDK's retries gave up on it): a
            # retry sooner fails at once and only burns the task's attempts.
            await self._retry_or_fail(
                row, lease, grpc.StatusCode.UNAVAILABLE, str(exc), exc.retry_after_seconds
            )
        except Exception as exc:
            await self._retry_or_fail(
                row, lease, grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}"
            )
        else:
            await self._finish(row, lease, states.COMPLETED, message)

    async def _retry_or_fail(
        self,
        row: Row,
        lease: Lease,
        code: grpc.StatusCode,
        message: str,
        not_before: float = 0.0,
    ) -> None:
        """Back to the queue after a backoff of at least `not_before` seconds, or FAILED
        once the attempts are used up."""
        attempts, allowed = int(row["attempts"]), int(row["max_attempts"])
        error = _error(code, message)
        if attempts >= allowed:
            await self._finish(
                row, lease, states.FAILED, f"failed after {attempts} attempts: {message}", error
            )
            return
        delay = not_before + backoff_delay(
            attempts - 1, self.config.backoff_base_seconds, self.config.backoff_cap_seconds
        )
        await self._finish(
            row,
            lease,
            states.SUBMITTED,
            f"attempt {attempts} of {allowed} failed: {message}; retrying in {delay:.2f}s",
            error,
            delay,
        )

    async def _finish(
        self,
        row: Row,
        lease: Lease,
        state: int,
        message: str,
        error: Mapping[str, Any] | None = None,
        backoff_seconds: float = 0.0,
    ) -> None:
        """Ends the attempt in the store, then counts it."""
        await self.store.finish(lease, state, message, error, backoff_seconds)
        type_ = str(row["type"])
        started = self._started.get(lease.task_id)
        outcome = states.state_name(state).lower()
        if started is not None:
            metrics.TASK_DURATION.labels(type_, outcome).observe(time.monotonic() - started)
        if state == states.SUBMITTED:
            metrics.RETRIES.labels(type_).inc()
        elif state == states.FAILED and int(row["attempts"]) >= int(row["max_attempts"]):
            metrics.DEAD_LETTERS.labels(type_).inc()

    async def _requeue_on_shutdown(self, lease: Lease) -> None:
        with contextlib.suppress(Fenced):
            await self.store.finish(
                lease,
                states.SUBMITTED,
                f"worker {self.id} stopped; requeued",
                _error(grpc.StatusCode.UNAVAILABLE, "worker stopped"),
                0.0,
            )

    async def _heartbeat_loop(self, running: _Running) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            await self._check_lease(running)

    async def _check_lease(self, running: _Running) -> None:
        """Extends the lease; delivers a cancel request; stops the work if fenced."""
        ctx = running.ctx
        try:
            cancel, reason = await self.store.heartbeat(ctx.lease, self.config.lease_seconds)
        except Fenced:
            running.lost = True
            if running.work is not None:
                running.work.cancel()
            return
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("heartbeat failed", task=ctx.name, error=str(exc))
            return
        if cancel and not ctx.cancel.is_set():
            ctx.cancel_reason = reason or "canceled"
            ctx.cancel.set()
            work = running.work
            if work is not None:
                running.hard_stop = asyncio.get_running_loop().call_later(
                    self.config.cancel_grace_seconds, work.cancel
                )

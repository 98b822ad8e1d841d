"""Group commit: calls that arrive while an earlier batch of the same key (the
tenant) is being written run together as the next batch.

Each hot-path call of CostService locks the budget rows of its tenant until its
transaction has committed, WAL flush included, so one tenant's calls run one
after another, each paying a flush. Run as one statement, a batch pays one flush
for all of its calls and holds the locks once. A lone call still runs alone, at
once, in its caller's task: batching only ever waits for a write that is already
in flight, never for a timer.

A batch that fails with an error which guarantees it was rolled back
(`rolled_back`, e.g. any error PostgreSQL reported) is run again one call at a
time, so one bad call answers with its own error and the others are unaffected.
Any other failure (a lost connection: the batch may or may not have committed)
is every call's answer. A caller that gives up (deadline, cancellation) before
its batch starts is left out of it.

A batch of several runs in a task of its own, in the context of its first call
(its trace, its logs).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Call = TypeVar("Call")
Answer = TypeVar("Answer")


@dataclass
class _Waiting(Generic[Call, Answer]):
    call: Call
    future: asyncio.Future[Answer]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class GroupCommit(Generic[Call, Answer]):
    """Runs calls through `run_one` (a batch of one) or `run_many` (answers in
    the order of the calls), at most one batch per key at a time and at most
    `max_batch` calls per batch. `max_batch=1` turns group commit off: every call
    runs alone as soon as it comes, concurrently with the others."""

    def __init__(
        self,
        run_one: Callable[[Call], Awaitable[Answer]],
        run_many: Callable[[Sequence[Call]], Awaitable[Sequence[Answer]]],
        key: Callable[[Call], Hashable],
        rolled_back: Callable[[BaseException], bool],
        max_batch: int = 64,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_one = run_one
        self._run_many = run_many
        self._key = key
        self._rolled_back = rolled_back
        self.max_batch = max_batch
        self._queues: dict[Hashable, list[_Waiting[Call, Answer]]] = {}
        # Keys being written: the task writing a batch, None for a lone call
        # written in its caller's task.
        self._writing: dict[Hashable, asyncio.Task[None] | None] = {}
        # What was written so far (benchmarks and tests read them).
        self.batches_written = 0
        self.calls_written = 0
        self.largest_batch = 0

    async def submit(self, call: Call) -> Answer:
        """The call's answer, from whichever batch it ran in."""
        key = self._key(call)
        if self.max_batch == 1:  # group commit off: every call alone, as it comes
            self._count(1)
            return await self._run_one(call)
        if key not in self._writing:
            # Nothing of its key is being written: a batch of one, right here (no
            # task, no hop through the event loop); calls arriving meanwhile queue.
            self._writing[key] = None
            self._count(1)
            try:
                return await self._run_one(call)
            finally:
                self._next_batch(key)
        waiting: _Waiting[Call, Answer] = _Waiting(call, asyncio.get_running_loop().create_future())
        self._queues.setdefault(key, []).append(waiting)
        return await waiting.future

    def _count(self, calls: int) -> None:
        self.batches_written += 1
        self.calls_written += calls
        self.largest_batch = max(self.largest_batch, calls)

    def _next_batch(self, key: Hashable) -> None:
        queue = self._queues.get(key, [])
        batch: list[_Waiting[Call, Answer]] = []
        while queue and len(batch) < self.max_batch:
            waiting = queue.pop(0)
            if not waiting.future.done():  # its caller gave up: leave it out
                batch.append(waiting)
        if not batch:
            self._queues.pop(key, None)
            self._writing.pop(key, None)
            return
        self._count(len(batch))
        task = asyncio.create_task(self._write(batch), context=batch[0].context)
        self._writing[key] = task
        task.add_done_callback(lambda _: self._next_batch(key))

    async def _write(self, batch: list[_Waiting[Call, Answer]]) -> None:
        try:
            if len(batch) == 1:
                _answer(batch[0], await self._outcome(self._run_one, batch[0].call))
                return
            try:
                answers = await self._run_many([waiting.call for waiting in batch])
            except Exception as exc:
                if not self._rolled_back(exc):
                    raise
                for waiting in batch:  # nothing was written: each call alone
                    _answer(waiting, await self._outcome(self._run_one, waiting.call))
                return
            for waiting, answer in zip(batch, answers, strict=True):
                _answer(waiting, answer)
        except BaseException as exc:
            for waiting in batch:
                _answer(waiting, exc)
            if not isinstance(exc, Exception):
                raise

    @staticmethod
    async def _outcome(
        run: Callable[[Call], Awaitable[Answer]], call: Call
    ) -> Answer | BaseException:
        try:
            return await run(call)
        except Exception as exc:
            return exc


def _answer(waiting: _Waiting[Call, Answer], answer: Answer | BaseException) -> None:
    future = waiting.future
    if future.done():
        return
    if isinstance(answer, asyncio.CancelledError):
        future.cancel()
    elif isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)

"""Group commit without a database: a lone call runs alone and at once, calls
that arrive while their key's batch is being written form the next batch, each
caller gets its own answer, and failures reach exactly the calls they concern."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence

import pytest

from services.cost.group_commit import GroupCommit

Call = tuple[str, int]  # (key, value)
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")


class RolledBack(Exception):
    """The fake store's "nothing was written" error."""


class Lost(Exception):
    """The fake store's "the answer was lost" error."""


class FakeStore:
    """Answers value * 10; a gate holds every write until the test opens it."""

    def __init__(self) -> None:
        self.writes: list[list[Call]] = []
        self.contexts: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_many: Exception | None = None
        self.fail_one: set[int] = set()

    async def one(self, call: Call) -> int:
        self.writes.append([call])
        self.contexts.append(CALLER.get())
        await self.gate.wait()
        if call[1] in self.fail_one:
            raise RolledBack(f"bad {call[1]}")
        return call[1] * 10

    async def many(self, calls: Sequence[Call]) -> list[int]:
        self.writes.append(list(calls))
        self.contexts.append(CALLER.get())
        await self.gate.wait()
        if self.fail_many is not None:
            raise self.fail_many
        return [value * 10 for _, value in calls]


def group(store: FakeStore, max_batch: int = 64) -> GroupCommit[Call, int]:
    return GroupCommit(
        store.one,
        store.many,
        key=lambda call: call[0],
        rolled_back=lambda exc: isinstance(exc, RolledBack),
        max_batch=max_batch,
    )


async def submit_while_held(
    commit: GroupCommit[Call, int], store: FakeStore, calls: list[Call]
) -> list[asyncio.Task[int]]:
    """The first call starts writing and is held there; the rest queue behind it."""
    store.gate.clear()
    tasks = [asyncio.create_task(commit.submit(calls[0]))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(commit.submit(call)) for call in calls[1:]]
    await asyncio.sleep(0)
    store.gate.set()
    return tasks


async def test_a_lone_call_is_written_alone_at_once() -> None:
    store = FakeStore()
    assert await group(store).submit(("t", 1)) == 10
    assert store.writes == [[("t", 1)]]


async def test_calls_arriving_during_a_write_form_the_next_batch_in_order() -> None:
    store = FakeStore()
    commit = group(store)
    calls = [("t", i) for i in range(6)]
    tasks = await submit_while_held(commit, store, calls)
    assert await asyncio.gather(*tasks) == [i * 10 for i in range(6)]
    assert store.writes == [[("t", 0)], [("t", i) for i in range(1, 6)]]
    assert (commit.batches_written, commit.calls_written, commit.largest_batch) == (2, 6, 5)


async def test_a_batch_carries_at_most_max_batch_calls() -> None:
    store = FakeStore()
    tasks = await submit_while_held(group(store, max_batch=2), store, [("t", i) for i in range(6)])
    assert await asyncio.gather(*tasks) == [i * 10 for i in range(6)]
    assert [len(write) for write in store.writes] == [1, 2, 2, 1]


async def test_max_batch_one_writes_every_call_alone_without_waiting() -> None:
    store = FakeStore()
    commit = group(store, max_batch=1)
    store.gate.clear()
    tasks = [asyncio.create_task(commit.submit(("t", i))) for i in range(4)]
    await asyncio.sleep(0)
    assert store.writes == [[("t", i)] for i in range(4)]  # all four in flight at once
    store.gate.set()
    assert await asyncio.gather(*tasks) == [0, 10, 20, 30]


async def test_keys_do_not_wait_for_each_other() -> None:
    store = FakeStore()
    commit = group(store)
    store.gate.clear()
    first = asyncio.create_task(commit.submit(("a", 1)))
    second = asyncio.create_task(commit.submit(("b", 2)))
    for _ in range(3):  # submit, then the writes start
        await asyncio.sleep(0)
    assert store.writes == [[("a", 1)], [("b", 2)]]  # both being written at once
    store.gate.set()
    assert await asyncio.gather(first, second) == [10, 20]


async def test_a_rolled_back_batch_is_written_again_call_by_call() -> None:
    store = FakeStore()
    store.fail_many = RolledBack("deadlock")
    store.fail_one = {2}
    tasks = await submit_while_held(group(store), store, [("t", i) for i in range(4)])
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [results[0], results[1], results[3]] == [0, 10, 30]
    assert isinstance(results[2], RolledBack)
    assert store.writes[1] == [("t", 1), ("t", 2), ("t", 3)]
    assert store.writes[2:] == [[("t", 1)], [("t", 2)], [("t", 3)]]


async def test_a_batch_whose_outcome_is_unknown_fails_every_call_without_retrying() -> None:
    store = FakeStore()
    store.fail_many = Lost("connection lost")
    tasks = await submit_while_held(group(store), store, [("t", i) for i in range(4)])
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 0
    assert all(isinstance(result, Lost) for result in results[1:])
    assert len(store.writes) == 2  # written once, never again


async def test_a_caller_that_gave_up_before_its_batch_is_left_out() -> None:
    store = FakeStore()
    commit = group(store)
    store.gate.clear()
    first = asyncio.create_task(commit.submit(("t", 0)))
    await asyncio.sleep(0)
    gone = asyncio.create_task(commit.submit(("t", 1)))
    kept = asyncio.create_task(commit.submit(("t", 2)))
    await asyncio.sleep(0)
    gone.cancel()
    store.gate.set()
    assert await asyncio.gather(first, kept) == [0, 20]
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert store.writes == [[("t", 0)], [("t", 2)]]


async def test_a_batch_runs_in_the_context_of_its_first_call() -> None:
    store = FakeStore()
    commit = group(store)

    async def as_caller(name: str, call: Call) -> int:
        CALLER.set(name)
        return await commit.submit(call)

    store.gate.clear()
    tasks = [asyncio.create_task(as_caller("alice", ("t", 0)))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(as_caller(n, ("t", i))) for i, n in ((1, "bob"), (2, "eve"))]
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(*tasks)
    assert store.contexts == ["alice", "bob"]


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        group(FakeStore(), max_batch=0)

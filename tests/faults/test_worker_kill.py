"""A worker process SIGKILLed while its task holds a cost reservation (the model
call is under way): after the lease expires another worker finishes the task
exactly once, the dead attempt's reservation is given back instead of holding
the budget until its ttl, and the spend is committed once.

(tests/integration/task/test_task_sigkill.py proves exactly-once and fencing
with a task that spends nothing; this is about the money.)"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import asyncpg
import pytest

from protomesh.task.v1 import task_service_pb2 as pb
from tests.conftest import Mint
from tests.faults.conftest import (
    FAST_WORKER_ENV,
    PRICED_MODEL,
    ModelProvider,
    System,
    Tenant,
    WorkerRunner,
    child,
    eventually,
    generator_for,
)

ACTIVE, COMMITTED = 1, 2


@pytest.mark.timeout(60)
async def test_a_sigkilled_workers_reservation_is_released_and_the_task_is_charged_once(
    system: System,
    owner: asyncpg.Connection,
    provider: ModelProvider,
    worker: WorkerRunner,
    mint: Mint,
    tmp_path: Path,
) -> None:
    tenant = Tenant(system, mint, f"kill-{uuid.uuid4().hex[:8]}")
    provider.mode = "stall"  # the first answer hangs after its first words
    env = system.environ(
        **FAST_WORKER_ENV,
        PROTOMESH_GENERATOR_BASE_URL=provider.url,
        PROTOMESH_GENERATOR_MODEL=PRICED_MODEL,
        PROTOMESH_GENERATOR_MAX_RETRIES="0",
    )
    argv = ["-m", "services.task.worker", "--count", "1"]
    async with child(argv, env, tmp_path / "worker.log") as doomed:
        task = await tenant.create_task("rag.answer", {"question": "Do otters hold hands?"})
        await eventually(provider.stalled.is_set, within=30, what="the model call under way")
        held = await owner.fetch(
            "SELECT id, state FROM cost.reservations WHERE tenant_id = $1 AND task = $2",
            tenant.name,
            task.name,
        )
        lease_owner = await owner.fetchval(
            "SELECT lease_owner FROM task.tasks WHERE id = $1",
            uuid.UUID(task.name.removeprefix("tasks/")),
        )
        assert [r["state"] for r in held] == [ACTIVE], "the call runs under a reservation"
        assert lease_owner.split(":")[1] == str(doomed.pid)
        doomed.signal(signal.SIGKILL)
        assert await doomed.wait(within=5) == -signal.SIGKILL
    provider.mode = "up"

    async with worker(generator_for(provider)):
        await tenant.wait_task(task.name, pb.TASK_STATE_COMPLETED, within=20)
        reservations = await owner.fetch(
            "SELECT id, state, usage_id FROM cost.reservations"
            " WHERE tenant_id = $1 AND task = $2 ORDER BY create_time",
            tenant.name,
            task.name,
        )

    done = await tenant.get_task(task.name, history_length=1000)
    assert [a.number for a in done.attempts] == [1, 2]
    assert done.attempts[0].worker_id == lease_owner
    assert "expired" in done.attempts[0].error.message
    statuses = [e.status_update.state for e in done.history if e.HasField("status_update")]
    assert statuses.count(pb.TASK_STATE_COMPLETED) == 1
    assert len(done.artifacts) == 1
    assert provider.chat_requests == 2  # one per attempt: nothing was generated twice

    # The dead attempt's hold is given back; only the finishing attempt's remains, committed.
    assert reservations[0]["id"] == held[0]["id"]
    assert [r["state"] for r in reservations[1:]] == [COMMITTED]
    assert ACTIVE not in [r["state"] for r in reservations], "a reservation leaked"
    # Charged once, for the call that produced the answer.
    usage = await owner.fetch(
        "SELECT id, amount_micros, input_tokens, output_tokens FROM cost.usage_records"
        " WHERE tenant_id = $1 AND task = $2",
        tenant.name,
        task.name,
    )
    assert len(usage) == 1
    assert usage[0]["id"] == reservations[-1]["usage_id"]
    assert (usage[0]["input_tokens"], usage[0]["output_tokens"]) == provider.usage
    spent = await owner.fetchval(
        "SELECT cost_spent_micros FROM task.tasks WHERE id = $1",
        uuid.UUID(task.name.removeprefix("tasks/")),
    )
    assert spent == usage[0]["amount_micros"] > 0
    costs = [e.cost for e in done.history if e.HasField("cost")]
    assert [c.amount_micros for c in costs] == [spent]

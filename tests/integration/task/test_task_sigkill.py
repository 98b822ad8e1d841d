"""A worker process SIGKILLed mid-task: after its lease expires another worker
runs the task to completion exactly once, and the dead worker's lease (owner +
epoch) can no longer write."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import pytest

from protomesh.task.v1 import task_service_pb2 as pb
from services.platform.config import Settings
from services.task import states
from services.task.store import Fenced, Lease, TaskStore
from tests.integration.task.conftest import Client


async def test_a_sigkilled_workers_task_completes_once_elsewhere_and_its_writes_are_fenced(
    client_for, workers, task_settings: Settings, store: TaskStore, owner_conn
) -> None:
    client: Client = client_for(f"k-{uuid.uuid4().hex[:8]}")
    env = {
        **os.environ,
        "PROTOMESH_DATA_DIR": str(task_settings.data_dir),
        "PROTOMESH_DATABASE_URL": task_settings.database_url,
        "PROTOMESH_LOG_LEVEL": "warning",
        "PROTOMESH_TASK_LEASE_SECONDS": "1.5",
        "PROTOMESH_TASK_HEARTBEAT_SECONDS": "0.3",
        "PROTOMESH_TASK_POLL_SECONDS": "0.5",
        "PROTOMESH_TASK_REAP_SECONDS": "0.3",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.task.worker",
        "--count",
        "1",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        task = await client.create("noop", {"sleep_seconds": 1.0}, priority=9)
        task_id = uuid.UUID(task.name.removeprefix("tasks/"))
        for _ in range(200):
            row = await owner_conn.fetchrow(
                "SELECT state, lease_owner, lease_epoch, progress_step FROM task.tasks"
                " WHERE id = $1",
                task_id,
            )
            if row["state"] == states.WORKING and row["progress_step"] == "sleep":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the worker process never started the task")
        assert row["lease_owner"].split(":")[1] == str(process.pid)
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 5)
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 5)
    dead = Lease(task_id, "", row["lease_owner"], row["lease_epoch"])
    async with workers():
        done = await client.wait(task.name, pb.TASK_STATE_COMPLETED, within=15)
    done = await client.get(task.name, history_length=1000)
    assert [a.number for a in done.attempts] == [1, 2]
    assert done.attempts[0].worker_id == row["lease_owner"]
    assert "expired" in done.attempts[0].error.message
    assert done.attempts[1].worker_id != row["lease_owner"]
    statuses = [e.status_update.state for e in done.history if e.HasField("status_update")]
    assert statuses.count(pb.TASK_STATE_COMPLETED) == 1
    assert statuses == [
        pb.TASK_STATE_SUBMITTED,
        pb.TASK_STATE_WORKING,
        pb.TASK_STATE_SUBMITTED,  # reaped after the lease expired
        pb.TASK_STATE_WORKING,
        pb.TASK_STATE_COMPLETED,
    ]
    # The dead worker's lease is worthless now.
    with pytest.raises(Fenced):
        await store.append_event(dead, "log", {"level": "info", "message": "from the grave"})
    with pytest.raises(Fenced):
        await store.finish(dead, states.COMPLETED, "zombie")

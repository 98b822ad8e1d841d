"""Persistence of tasks, events and artifacts: the named queries of
`sql/queries.sql`, called by name, inside the right kind of transaction.

API-side methods run in `tenant_transaction` (row-level security admits the
caller's tenant only). Worker-side methods run with `app.worker = 'on'`: on a
worker pool whose sessions set it at connect (`worker_session=True`, one round
trip per single-statement write), else in `settings_transaction(worker="on")`.
Every worker write is fenced by the lease (owner + epoch): when it matches no
row, `Fenced` is raised and the caller must stop working on the task.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
from google.rpc import code_pb2

from services.platform.db import (
    Connection,
    Pool,
    named_queries,
    settings_transaction,
    tenant_transaction,
)
from services.task import states

Row: TypeAlias = asyncpg.Record


Q = named_queries(Path(__file__).resolve().parent / "sql" / "queries.sql")


def q(name: str) -> str:
    return Q[name]


class Fenced(Exception):
    """The lease was lost (expired and re-claimed, or the task left WORKING): the
    write was rejected and the worker must abandon the task."""


@dataclass(frozen=True)
class Lease:
    """A worker's hold on one task: the fencing token of every write it makes."""

    task_id: uuid.UUID
    tenant_id: str
    owner: str
    epoch: int


@dataclass(frozen=True)
class NewTask:
    type: str
    input: dict[str, Any]
    priority: int
    context_id: str
    request_id: str | None
    request_hash: str
    state: int
    status_message: str
    max_attempts: int
    timeout_seconds: float
    cost_limit_micros: int
    submitter: str
    submitter_scopes: str
    traceparent: str
    error: dict[str, Any] | None
    tracestate: str = ""


def parse_task_id(name: str) -> uuid.UUID | None:
    """The id of `tasks/{id}`, or None when it cannot name a task."""
    try:
        return uuid.UUID(name.removeprefix("tasks/"))
    except ValueError:
        return None


def status_body(state: int, message: str) -> dict[str, Any]:
    return {"state": f"TASK_STATE_{states.state_name(state)}", "message": message}


class TaskStore:
    def __init__(self, pool: Pool, worker_session: bool = False) -> None:
        self.pool = pool
        self.worker_session = worker_session

    # -- API side (tenant transactions) -----------------------------------

    def tenant(self, tenant_id: str) -> Any:
        return tenant_transaction(self.pool, tenant_id)

    async def create(self, tenant_id: str, new: NewTask) -> tuple[Row, bool]:
        async with tenant_transaction(self.pool, tenant_id) as conn:
            row = await conn.fetchrow(
                q("create_task"),
                tenant_id,
                new.type,
                new.input,
                new.priority,
                new.context_id,
                new.request_id,
                new.request_hash,
                new.state,
                new.status_message,
                new.max_attempts,
                new.timeout_seconds,
                new.cost_limit_micros,
                new.submitter,
                new.submitter_scopes,
                new.traceparent,
                new.error,
                status_body(new.state, new.status_message),
                new.tracestate,
            )
            assert row is not None
            return row, bool(row["created"])

    @staticmethod
    async def get(conn: Connection, task_id: uuid.UUID, lock: bool = False) -> Row | None:
        row: Row | None = await conn.fetchrow(q("lock_task" if lock else "get_task"), task_id)
        return row

    @staticmethod
    async def events_after(
        conn: Connection, task_id: uuid.UUID, after_seq: int, limit: int = 500
    ) -> list[Row]:
        rows: list[Row] = await conn.fetch(q("task_events_after"), task_id, after_seq, limit)
        return rows

    @staticmethod
    async def history(conn: Connection, task_id: uuid.UUID, length: int) -> list[Row]:
        if length <= 0:
            return []
        rows: list[Row] = await conn.fetch(q("task_history"), task_id, length)
        return rows

    @staticmethod
    async def artifacts(conn: Connection, task_id: uuid.UUID) -> list[Row]:
        rows: list[Row] = await conn.fetch(q("task_artifacts"), task_id)
        return rows

    @staticmethod
    async def transition(
        conn: Connection,
        row: Row,
        new_state: int,
        message: str,
        *,
        clear_lease: bool = False,
        run_after: datetime | None = None,
    ) -> None:
        """Moves a locked task to `new_state` with its status event."""
        states.check_transition(row["state"], new_state)
        await conn.execute(
            q("transition"),
            row["id"],
            new_state,
            message,
            clear_lease,
            run_after,
            status_body(new_state, message),
        )

    @staticmethod
    async def request_cancel(conn: Connection, task_id: uuid.UUID, reason: str) -> None:
        await conn.execute(q("request_cancel"), task_id, reason)
        await conn.execute(q("notify_cancel"), str(task_id))

    @staticmethod
    async def add_input(conn: Connection, task_id: uuid.UUID, value: dict[str, Any]) -> None:
        await conn.execute(q("add_input"), task_id, value)

    @staticmethod
    async def reset_for_retry(conn: Connection, task_id: uuid.UUID, extra_attempts: int) -> None:
        await conn.execute(q("reset_for_retry"), task_id, extra_attempts)

    @staticmethod
    async def delete(conn: Connection, task_id: uuid.UUID) -> None:
        await conn.execute(q("delete_task"), task_id)

    @staticmethod
    async def list_tasks(
        conn: Connection,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        filter_sql: str,
        filter_params: list[Any],
    ) -> list[Row]:
        sql = q("list_tasks").replace("{filter}", filter_sql)
        rows: list[Row] = await conn.fetch(
            sql, limit, after[0] if after else None, after[1] if after else None, *filter_params
        )
        return rows

    # -- worker side (cross-tenant, fenced) --------------------------------

    @asynccontextmanager
    async def worker(self, atomic: bool = False) -> AsyncIterator[Connection]:
        """A connection that sees every tenant's tasks (for workers only); `atomic`
        wraps it in a transaction."""
        if not self.worker_session:
            async with settings_transaction(self.pool, worker="on") as conn:
                yield conn
            return
        async with self.pool.acquire() as conn:
            if atomic:
                async with conn.transaction():
                    yield conn
            else:
                yield conn

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Row]:
        async with self.worker() as conn:
            rows: list[Row] = await conn.fetch(q("claim_tasks"), owner, limit, lease_seconds)
            return rows

    async def next_due(self) -> datetime | None:
        async with self.worker() as conn:
            due: datetime | None = await conn.fetchval(q("next_due"))
            return due

    async def queue_depth(self) -> list[tuple[int, str, int]]:
        """(state, type, count) of every unfinished task, across tenants."""
        async with self.worker() as conn:
            rows = await conn.fetch(q("queue_depth"))
        return [(int(r["state"]), str(r["type"]), int(r["tasks"])) for r in rows]

    async def heartbeat(self, lease: Lease, lease_seconds: float) -> tuple[bool, str]:
        """Extends the lease; returns (cancel requested, reason); raises Fenced."""
        async with self.worker() as conn:
            row = await conn.fetchrow(
                q("heartbeat"), lease.task_id, lease.owner, lease.epoch, lease_seconds
            )
        if row is None:
            raise Fenced(f"lease on tasks/{lease.task_id} epoch {lease.epoch} lost")
        return bool(row["cancel_requested"]), str(row["cancel_reason"])

    @staticmethod
    async def _event(
        conn: Connection,
        lease: Lease,
        kind: str,
        body: Mapping[str, Any],
        step: str | None = None,
        percent: int | None = None,
        cost_micros: int = 0,
    ) -> int:
        seq = await conn.fetchval(
            q("worker_event"),
            lease.task_id,
            lease.owner,
            lease.epoch,
            kind,
            dict(body),
            step,
            percent,
            cost_micros,
        )
        if seq is None:
            raise Fenced(f"event on tasks/{lease.task_id} epoch {lease.epoch} fenced")
        return int(seq)

    async def append_event(
        self,
        lease: Lease,
        kind: str,
        body: Mapping[str, Any],
        *,
        step: str | None = None,
        percent: int | None = None,
        cost_micros: int = 0,
    ) -> int:
        async with self.worker() as conn:
            return await self._event(conn, lease, kind, body, step, percent, cost_micros)

    async def put_artifact(
        self, lease: Lease, artifact: Mapping[str, Any], event: Mapping[str, Any], append: bool
    ) -> int:
        """Stores (or extends) an artifact and logs its ArtifactUpdate event."""
        async with self.worker(atomic=True) as conn:
            seq = await self._event(conn, lease, "artifact_update", event)
            await conn.execute(
                q("upsert_artifact"),
                lease.task_id,
                artifact["artifactId"],
                artifact.get("name", ""),
                artifact.get("description", ""),
                artifact.get("parts", []),
                artifact.get("metadata", {}),
                append,
            )
            return seq

    async def save_checkpoint(self, lease: Lease, checkpoint: Mapping[str, Any]) -> None:
        async with self.worker() as conn:
            found = await conn.fetchval(
                q("save_checkpoint"), lease.task_id, lease.owner, lease.epoch, dict(checkpoint)
            )
        if found is None:
            raise Fenced(f"checkpoint of tasks/{lease.task_id} epoch {lease.epoch} fenced")

    async def hold_reservation(self, lease: Lease, name: str) -> None:
        """Records a cost reservation the attempt holds during a model call (fenced),
        so that it can be given back if the worker dies before settling it."""
        async with self.worker() as conn:
            found = await conn.fetchval(
                q("hold_reservation"), lease.task_id, lease.owner, lease.epoch, name
            )
        if found is None:
            raise Fenced(f"reservation of tasks/{lease.task_id} epoch {lease.epoch} fenced")

    async def forget_reservations(self, task_id: uuid.UUID, names: Sequence[str]) -> None:
        """Drops settled (committed or released) reservations from the task's list."""
        async with self.worker() as conn:
            await conn.execute(q("forget_reservations"), task_id, list(names))

    async def orphaned_holds(self, limit: int = 100) -> list[Row]:
        """Tasks no attempt is running that still list reservations (their worker died
        mid-call), with what it takes to release them as the task's submitter."""
        async with self.worker() as conn:
            rows: list[Row] = await conn.fetch(q("orphaned_holds"), limit)
            return rows

    async def finish(
        self,
        lease: Lease,
        state: int,
        message: str,
        error: Mapping[str, Any] | None = None,
        backoff_seconds: float = 0.0,
    ) -> int:
        """Ends the current attempt (fenced): COMPLETED/FAILED/CANCELED, paused in
        INPUT_REQUIRED, or back to SUBMITTED for a retry after `backoff_seconds`."""
        states.check_transition(states.WORKING, state)
        async with self.worker() as conn:
            seq = await conn.fetchval(
                q("finish"),
                lease.task_id,
                lease.owner,
                lease.epoch,
                state,
                message,
                dict(error) if error else None,
                status_body(state, message),
                backoff_seconds,
            )
        if seq is None:
            raise Fenced(f"finish of tasks/{lease.task_id} epoch {lease.epoch} fenced")
        return int(seq)

    async def reap_expired(self, limit: int = 100) -> int:
        """Closes the attempts of workers that stopped heartbeating: each task goes
        back to the queue, or to FAILED when its attempts are used up, or to
        CANCELED when a cancel was requested. Returns how many were reaped."""
        async with self.worker(atomic=True) as conn:
            rows = await conn.fetch(q("expired_leases"), limit)
            for row in rows:
                error = {
                    "code": code_pb2.DEADLINE_EXCEEDED,
                    "message": f"lease of worker {row['lease_owner']} expired",
                }
                if row["cancel_requested"]:
                    state, message = states.CANCELED, row["cancel_reason"] or "canceled"
                elif row["attempts"] >= row["max_attempts"]:
                    state = states.FAILED
                    message = f"attempt {row['attempts']} of {row['max_attempts']} lost: " + str(
                        error["message"]
                    )
                else:
                    state = states.SUBMITTED
                    message = f"attempt {row['attempts']} lost ({error['message']}); requeued"
                await conn.execute(
                    q("reap"), row["id"], state, message, error, status_body(state, message)
                )
            return len(rows)

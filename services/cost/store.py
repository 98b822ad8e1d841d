"""Persistence of CostService: the named queries in `sql/queries.sql` and the
hot-path functions of the migrations, each run as one statement (one round trip;
several calls of a tenant per statement under load, see `group_commit`) or inside
a tenant transaction (row-level security keeps tenants apart).

Outcomes of the hot-path functions are returned as `Outcome` values; turning
them into errors is the servicer's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg

from services.cost.group_commit import GroupCommit
from services.cost.money import Rates
from services.cost.periods import Period, period_start
from services.cost.pricebook import DEFAULT_CURRENCY, PriceVersion
from services.platform.db import Pool, named_queries, settings_transaction, tenant_transaction

Row: TypeAlias = asyncpg.Record


Q = named_queries(Path(__file__).resolve().parent / "sql" / "queries.sql")


@dataclass(frozen=True)
class Outcome:
    """What a hot-path function decided, with the rows it returned."""

    kind: str
    row: Row


@dataclass(frozen=True)
class UsageInput:
    """A usage record to write, already rated."""

    usage_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    provenance: int
    amount_micros: int
    currency_code: str
    price_version: int
    request_hash: bytes


@dataclass(frozen=True)
class BudgetFields:
    display_name: str
    scope_kind: int
    scope_id: str
    period: int
    hard_limit_micros: int
    soft_limit_micros: int
    alert_thresholds: list[int]


@dataclass(frozen=True)
class HotCall:
    """One hot-path call: its kind, its tenant and its arguments by name (the
    column names of `cost.hot_batch`'s calls)."""

    kind: str
    tenant: str
    args: dict[str, Any]


# Each kind's SQL function (its named query), and the order of its arguments after
# the tenant.
HOT_QUERIES = {
    "reserve": "reserve",
    "commit": "commit_reservation",
    "release": "release_reservation",
    "record": "record_usage",
    "charge": "charge",
}
_USAGE = (
    "usage_id",
    "key",
    "request_hash",
    "model",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "provenance",
)
HOT_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "reserve": (
        "id",
        "key",
        "request_hash",
        "amount",
        "user_id",
        "api_key_id",
        "task",
        "now_time",
        "expire_time",
        "period_starts",
    ),
    "commit": (
        "id",
        *(name for name in _USAGE if name != "key"),
        "amount",
        "currency_code",
        "price_version",
        "now_time",
        "period_starts",
    ),
    "release": ("id", "now_time"),
    "record": (
        *_USAGE,
        "user_id",
        "api_key_id",
        "task",
        "usage_time",
        "amount",
        "currency_code",
        "price_version",
        "period_starts",
        "now_time",
    ),
    "charge": (
        *_USAGE,
        "user_id",
        "api_key_id",
        "task",
        "amount",
        "currency_code",
        "price_version",
        "now_time",
        "period_starts",
    ),
}


def _usage_args(usage: UsageInput) -> dict[str, Any]:
    return {
        "usage_id": usage.usage_id,
        "request_hash": usage.request_hash,
        "model": usage.model,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "provenance": usage.provenance,
        "amount": usage.amount_micros,
        "currency_code": usage.currency_code,
        "price_version": usage.price_version,
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def _json_args(args: dict[str, Any]) -> dict[str, Any]:
    return {name: _json_value(value) for name, value in args.items()}


def rolled_back(exc: BaseException) -> bool:
    """Whether a failed statement certainly wrote nothing: PostgreSQL reported the
    error (the statement's implicit transaction was rolled back). A lost
    connection may have lost the answer of a commit instead."""
    return isinstance(exc, asyncpg.PostgresError)


def price_version_of(row: Row) -> PriceVersion:
    return PriceVersion(
        model=row["model"],
        version=row["version"],
        currency_code=row["currency_code"],
        rates=Rates(
            input=row["input_micros_per_mtok"],
            output=row["output_micros_per_mtok"],
            cached_input=row["cached_input_micros_per_mtok"],
            cache_write=row["cache_write_micros_per_mtok"],
            long_context_threshold_tokens=row["long_context_threshold_tokens"],
            long_context_input=row["long_context_input_micros_per_mtok"],
            long_context_output=row["long_context_output_micros_per_mtok"],
        ),
        effective_from=row["effective_from"],
    )


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool `reset` for the hot path: no reset query. asyncpg still rolls back an
    open transaction and drops listeners; the hot-path functions change no session
    state (their `set_config(..., true)` is transaction-local), so the default
    `RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()` would be a wasted
    round trip on every call."""


class CostStore:
    """`pool` serves everything; `hot_pool` (default: `pool`) serves the one-statement
    hot-path functions (reserve, commit, release, record usage, charge), at most
    `max_batch` calls of a tenant per statement (1: group commit off)."""

    def __init__(self, pool: Pool, hot_pool: Pool | None = None, max_batch: int = 64) -> None:
        self.pool = pool
        self.hot_pool = hot_pool or pool
        self.group_commit: GroupCommit[HotCall, Outcome] = GroupCommit(
            self._run_one,
            self._run_many,
            key=lambda call: call.tenant,
            rolled_back=rolled_back,
            max_batch=max_batch,
        )

    # -- price book ---------------------------------------------------------

    async def load_prices(self) -> list[PriceVersion]:
        rows = await self.pool.fetch(Q["all_prices"])
        return [price_version_of(row) for row in rows]

    async def insert_price(
        self, model: str, currency_code: str, rates: Rates, effective_from: datetime
    ) -> tuple[Row, bool]:
        """Adds a version (numbered per model); returns (row, created). An existing
        version with the same `effective_from` is returned with created=False."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(Q["lock_price_model"], model)
            row = await conn.fetchrow(
                Q["insert_price"],
                model,
                currency_code or DEFAULT_CURRENCY,
                rates.input,
                rates.output,
                rates.cached_input,
                rates.cache_write,
                rates.long_context_threshold_tokens,
                rates.long_context_input,
                rates.long_context_output,
                effective_from,
            )
            if row is not None:
                return row, True
            existing = await conn.fetchrow(Q["price_at_effective_from"], model, effective_from)
            assert existing is not None
            return existing, False

    async def current_prices_page(self, at: datetime, after_model: str, limit: int) -> list[Row]:
        rows: list[Row] = await self.pool.fetch(Q["current_prices_page"], at, after_model, limit)
        return rows

    async def price_history_page(
        self, after_model: str, after_version: int, limit: int
    ) -> list[Row]:
        rows: list[Row] = await self.pool.fetch(
            Q["price_history_page"], after_model, after_version, limit
        )
        return rows

    # -- the hot path -------------------------------------------------------
    # Every call goes through group commit (`services.cost.group_commit`): alone
    # when nothing else of its tenant is being written, else with the calls that
    # queued meanwhile, as one `cost.hot_batch` statement.

    async def reserve(
        self,
        tenant: str,
        reservation_id: str,
        request_id: str,
        request_hash: bytes,
        amount: int,
        attribution: tuple[str, str, str],
        now: datetime,
        expire_time: datetime,
        period_starts: Sequence[datetime],
    ) -> Outcome:
        user, api_key, task = attribution
        return await self.group_commit.submit(
            HotCall(
                "reserve",
                tenant,
                {
                    "id": reservation_id,
                    "key": request_id or None,
                    "request_hash": request_hash,
                    "amount": amount,
                    "user_id": user,
                    "api_key_id": api_key,
                    "task": task,
                    "now_time": now,
                    "expire_time": expire_time,
                    "period_starts": list(period_starts),
                },
            )
        )

    async def commit(
        self,
        tenant: str,
        reservation_id: str,
        usage: UsageInput,
        now: datetime,
        period_starts: Sequence[datetime],
    ) -> Outcome:
        return await self.group_commit.submit(
            HotCall(
                "commit",
                tenant,
                {
                    "id": reservation_id,
                    **_usage_args(usage),
                    "now_time": now,
                    "period_starts": list(period_starts),
                },
            )
        )

    async def release(self, tenant: str, reservation_id: str, now: datetime) -> Outcome:
        return await self.group_commit.submit(
            HotCall("release", tenant, {"id": reservation_id, "now_time": now})
        )

    async def record_usage(
        self,
        tenant: str,
        idempotency_key: str,
        usage: UsageInput,
        attribution: tuple[str, str, str],
        usage_time: datetime,
        period_starts: Sequence[datetime],
        now: datetime,
    ) -> Outcome:
        user, api_key, task = attribution
        return await self.group_commit.submit(
            HotCall(
                "record",
                tenant,
                {
                    "key": idempotency_key,
                    **_usage_args(usage),
                    "user_id": user,
                    "api_key_id": api_key,
                    "task": task,
                    "usage_time": usage_time,
                    "period_starts": list(period_starts),
                    "now_time": now,
                },
            )
        )

    async def charge(
        self,
        tenant: str,
        idempotency_key: str,
        usage: UsageInput,
        attribution: tuple[str, str, str],
        now: datetime,
        period_starts: Sequence[datetime],
    ) -> Outcome:
        """Reserve + commit of `usage` in one transaction (`cost.charge`)."""
        user, api_key, task = attribution
        return await self.group_commit.submit(
            HotCall(
                "charge",
                tenant,
                {
                    "key": idempotency_key,
                    **_usage_args(usage),
                    "user_id": user,
                    "api_key_id": api_key,
                    "task": task,
                    "now_time": now,
                    "period_starts": list(period_starts),
                },
            )
        )

    async def _run_one(self, call: HotCall) -> Outcome:
        names = HOT_ARGUMENTS[call.kind]
        row = await self.hot_pool.fetchrow(
            Q[HOT_QUERIES[call.kind]], call.tenant, *(call.args[name] for name in names)
        )
        assert row is not None
        return Outcome(row["outcome"], row)

    async def _run_many(self, calls: Sequence[HotCall]) -> list[Outcome]:
        ops = [{"n": n, "kind": call.kind, **_json_args(call.args)} for n, call in enumerate(calls)]
        rows = await self.hot_pool.fetch(Q["hot_batch"], calls[0].tenant, ops)
        by_call = sorted(rows, key=lambda row: row["n"])
        assert [row["n"] for row in by_call] == list(range(len(calls)))
        return [Outcome(row["outcome"], row) for row in by_call]

    async def expire_reservations(self, now: datetime, limit: int) -> int:
        async with settings_transaction(self.pool, cost_sweeper="on") as conn:
            count: int = await conn.fetchval(Q["expire_reservations"], now, limit)
            return count

    async def outstanding_reservations(self, now: datetime) -> int:
        """Reservations held and not yet lapsed, across tenants."""
        async with settings_transaction(self.pool, cost_sweeper="on") as conn:
            count: int = await conn.fetchval(Q["outstanding_reservations"], now)
            return count

    async def get_reservation(self, tenant: str, reservation_id: str) -> Row | None:
        async with tenant_transaction(self.pool, tenant) as conn:
            row: Row | None = await conn.fetchrow(Q["reservation_by_id"], reservation_id)
            return row

    # -- budgets ------------------------------------------------------------

    async def create_budget(
        self,
        tenant: str,
        budget_id: str,
        fields: BudgetFields,
        request_id: str,
        request_hash: bytes,
        now: datetime,
    ) -> tuple[Row | None, Row | None]:
        """(created row, None), or (None, the row that already holds the id or request id)."""
        async with tenant_transaction(self.pool, tenant) as conn:
            row = await conn.fetchrow(
                Q["create_budget"],
                budget_id,
                fields.display_name,
                fields.scope_kind,
                fields.scope_id,
                fields.period,
                fields.hard_limit_micros,
                fields.soft_limit_micros,
                fields.alert_thresholds,
                request_id or None,
                request_hash,
                now,
            )
            if row is not None:
                return row, None
            existing = None
            if request_id:
                existing = await conn.fetchrow(Q["budget_by_request_id"], request_id)
            if existing is None:
                existing = await conn.fetchrow(Q["budget_by_id"], budget_id)
            return None, existing

    async def get_budget(self, tenant: str, budget_id: str) -> Row | None:
        async with tenant_transaction(self.pool, tenant) as conn:
            row: Row | None = await conn.fetchrow(Q["budget_by_id"], budget_id)
            return row

    async def budgets_page(self, tenant: str, after_id: str, limit: int) -> list[Row]:
        async with tenant_transaction(self.pool, tenant) as conn:
            rows: list[Row] = await conn.fetch(Q["budgets_page"], after_id, limit)
            return rows

    async def budget_spend(
        self, tenant: str, pks: Sequence[int], period_starts: Sequence[datetime]
    ) -> dict[int, int]:
        async with tenant_transaction(self.pool, tenant) as conn:
            rows = await conn.fetch(Q["budget_spend"], list(pks), list(period_starts))
        return {row["pk"]: row["spent_micros"] for row in rows}

    async def update_budget(
        self,
        tenant: str,
        budget_id: str,
        change: Any,
        now: datetime,
    ) -> Row | None:
        """Locks the budget, lets `change(row)` (which may raise) compute the new
        fields, and writes them; None when there is no such budget. A new period
        gets its current spend counted again from the usage records (the counters
        are per period start, so the old period's count does not carry over)."""
        async with tenant_transaction(self.pool, tenant) as conn:
            current = await conn.fetchrow(Q["lock_budget"], budget_id)
            if current is None:
                return None
            new: BudgetFields = change(current)
            row: Row | None = await conn.fetchrow(
                Q["update_budget"],
                budget_id,
                new.display_name,
                new.period,
                new.hard_limit_micros,
                new.soft_limit_micros,
                new.alert_thresholds,
                now,
            )
            if row is not None and new.period != current["period"]:
                await conn.execute(
                    Q["recount_budget_spend"], row["pk"], period_start(Period(new.period), now)
                )
            return row

    async def delete_budget(self, tenant: str, budget_id: str, check: Any) -> bool:
        """Locks the budget, lets `check(row)` raise (etag), deletes; False if absent."""
        async with tenant_transaction(self.pool, tenant) as conn:
            current = await conn.fetchrow(Q["lock_budget"], budget_id)
            if current is None:
                return False
            check(current)
            await conn.execute(Q["delete_budget"], budget_id)
            return True

    # -- usage, reports, feed -----------------------------------------------

    async def usage_page(
        self,
        tenant: str,
        start: datetime,
        end: datetime,
        before: tuple[datetime, str],
        limit: int,
    ) -> list[Row]:
        async with tenant_transaction(self.pool, tenant) as conn:
            rows: list[Row] = await conn.fetch(
                Q["usage_page"], start, end, before[0], before[1], limit
            )
            return rows

    async def export_page(
        self,
        tenant: str,
        start: datetime,
        end: datetime,
        after: tuple[datetime, str],
        limit: int,
    ) -> list[Row]:
        async with tenant_transaction(self.pool, tenant) as conn:
            rows: list[Row] = await conn.fetch(
                Q["export_page"], start, end, after[0], after[1], limit
            )
            return rows

    async def spend_report(
        self, tenant: str, start: datetime, end: datetime, group_by: int
    ) -> list[Row]:
        async with tenant_transaction(self.pool, tenant) as conn:
            rows: list[Row] = await conn.fetch(Q["spend_report"], start, end, group_by)
            return rows

    async def events_after(self, tenant: str, sequence: int, limit: int) -> list[Row]:
        async with tenant_transaction(self.pool, tenant) as conn:
            rows: list[Row] = await conn.fetch(Q["spend_events_after"], sequence, limit)
            return rows

    # -- tiers --------------------------------------------------------------

    async def get_tier(self, tenant: str) -> Row | None:
        async with tenant_transaction(self.pool, tenant) as conn:
            row: Row | None = await conn.fetchrow(Q["get_tier"])
            return row

    async def set_tier(
        self,
        tenant: str,
        tier: str,
        budget: tuple[str, str, int, list[int]],
        now: datetime,
    ) -> Row:
        """Sets the tier and, in the same transaction, the tier's monthly budget."""
        budget_id, display_name, limit, thresholds = budget
        async with tenant_transaction(self.pool, tenant) as conn:
            row = await conn.fetchrow(Q["upsert_tier"], tier, now)
            await conn.execute(
                Q["upsert_tier_budget"], budget_id, display_name, limit, thresholds, now
            )
        assert row is not None
        return row

    async def all_tiers(self) -> dict[str, str]:
        async with settings_transaction(self.pool, cost_tiers="on") as conn:
            rows = await conn.fetch(Q["all_tiers"])
        return {row["tenant_id"]: row["tier"] for row in rows}

"""CostService RPCs → price book, metering, budget and report calls.

The tenant is always the verified token's. Amounts are rated here with the one
rating rule (`services.cost.money`) against the price version in effect at the
usage time; the database re-checks that version inside the write. What a
reservation's (or a usage record's) write outcome means is decided by
`services.cost.reservations`; its refusals become statuses here (`_status`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.api import httpbody_pb2

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.cost import budgets as budget_rules
from services.cost import convert, export, feed, metrics, reservations
from services.cost.money import Rates, Tokens, cost_micros, estimate_micros
from services.cost.periods import (
    EPOCH,
    Clock,
    Period,
    month_start,
    period_start,
    period_starts,
)
from services.cost.pricebook import CachedPriceBook, PriceVersion
from services.cost.ratelimit import TierRateLimiter
from services.cost.store import (
    BudgetFields,
    CostStore,
    Outcome,
    Row,
    UsageInput,
    price_version_of,
)
from services.cost.tiers import TIER_ALERT_THRESHOLDS, TIER_BUDGET_ID, Tier
from services.platform import heartbeats
from services.platform.context import principal
from services.platform.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ProtomeshError,
    QuotaViolation,
    ResourceExhausted,
)
from services.platform.idempotency import ensure_replay, request_digest
from services.platform.notify import Hub
from services.platform.pagination import PageTokens, clamp_page_size

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
PRICE_RETRIES = 3


@dataclass(frozen=True)
class CostOptions:
    export_page_rows: int = 500
    watch_batch_size: int = 200
    watch_recheck_seconds: float = 30.0
    # A quiet WatchSpend sends a heartbeat this often.
    watch_heartbeat_seconds: float = heartbeats.DEFAULT_HEARTBEAT_SECONDS
    # Most hot-path calls of one tenant written in one statement (group commit);
    # 1 turns group commit off (every call its own statement, as it comes).
    group_commit_max_batch: int = 64


def _new_id() -> str:
    return uuid.uuid4().hex


def _resource_id(name: str, prefix: str) -> str:
    return name.removeprefix(prefix)


@contextmanager
def _refusals(name: str = "") -> Iterator[None]:
    """Raises the reservation rules' refusals as statuses (`name`: the reservation's)."""
    try:
        yield
    except reservations.Refusal as refusal:
        raise _status(refusal, name) from None


def _status(refusal: reservations.Refusal, name: str) -> ProtomeshError:
    match refusal:
        case reservations.ReservationNotFound():
            return NotFound(f"{name} not found", reason="RESERVATION_NOT_FOUND")
        case reservations.NotActive(state=state, wanted=wanted):
            return FailedPrecondition(
                f"{name} is {reservations.state_name(state)}, not ACTIVE",
                reason=f"RESERVATION_{reservations.STATE_NAMES.get(state, 'UNKNOWN')}",
                metadata={
                    "name": name,
                    "state": reservations.state_name(state),
                    "wanted": reservations.state_name(wanted),
                },
            )
        case reservations.BudgetExhausted():
            metrics.BUDGET_REJECTIONS.labels(metrics.rejection_scope(refusal.budget_id)).inc()
            subject = f"budgets/{refusal.budget_id}"
            limit, used = refusal.limit_micros, refusal.used_micros
            remaining, amount = refusal.remaining_micros, refusal.requested_micros
            return ResourceExhausted(
                f"{subject} has {remaining} micros left of its {limit} hard limit; "
                f"{amount} requested",
                [
                    QuotaViolation(
                        subject,
                        f"remaining {remaining} micros of {limit} "
                        f"(committed + reserved {used}); requested {amount}",
                    )
                ],
            )
        case reservations.PriceChanged():
            return Aborted("the price book changed during the call; retry", reason="PRICE_CHANGED")
        case reservations.FutureUsageTime():
            return InvalidArgument.for_field("usage_time", "must not be in the future")
    raise AssertionError(f"unmapped refusal {refusal!r}")


class CostServicer(pb_grpc.CostServiceServicer):
    def __init__(
        self,
        store: CostStore,
        prices: CachedPriceBook,
        hub: Hub,
        tokens: PageTokens,
        clock: Clock,
        tiers: Mapping[str, Tier],
        limiter: TierRateLimiter | None = None,
        options: CostOptions | None = None,
    ) -> None:
        self.store = store
        self.prices = prices
        self.hub = hub
        self.tokens = tokens
        self.clock = clock
        self.tiers = tiers
        self.limiter = limiter
        self.options = options or CostOptions()

    # -- price book ---------------------------------------------------------

    async def ListPrices(
        self, request: pb.ListPricesRequest, context: Any
    ) -> pb.ListPricesResponse:
        tenant = principal().tenant_id
        size = clamp_page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        binding = {"rpc": "ListPrices", "history": request.include_history}
        position = (
            self.tokens.decode(request.page_token, tenant, binding) if request.page_token else {}
        )
        after_model, after_version = str(position.get("m", "")), int(position.get("v", 0))
        if request.include_history:
            rows = await self.store.price_history_page(after_model, after_version, size + 1)
        else:
            rows = await self.store.current_prices_page(self.clock(), after_model, size + 1)
        response = pb.ListPricesResponse(
            prices=[convert.price_to_pb(price_version_of(r)) for r in rows[:size]]
        )
        if len(rows) > size:
            last = rows[size - 1]
            response.next_page_token = self.tokens.encode(
                tenant, binding, {"m": last["model"], "v": last["version"]}
            )
        return response

    async def GetPrice(self, request: pb.GetPriceRequest, context: Any) -> pb.Price:
        model = _resource_id(request.name, "prices/")
        at = convert.from_ts(request.at) if request.HasField("at") else self.clock()
        price = await self.prices.at(model, at)
        if price is None:
            raise NotFound(
                f"no price for model {model!r} at {at.isoformat()}",
                reason="PRICE_NOT_FOUND",
                metadata={"model": model},
            )
        return convert.price_to_pb(price)

    async def UpsertPrice(self, request: pb.UpsertPriceRequest, context: Any) -> pb.Price:
        price = request.price
        rates = Rates(
            input=price.input_micros_per_mtok,
            output=price.output_micros_per_mtok,
            cached_input=price.cached_input_micros_per_mtok,
            cache_write=price.cache_write_micros_per_mtok,
            long_context_threshold_tokens=price.long_context_threshold_tokens,
            long_context_input=price.long_context_input_micros_per_mtok,
            long_context_output=price.long_context_output_micros_per_mtok,
        )
        effective = (
            convert.from_ts(price.effective_from)
            if price.HasField("effective_from")
            else self.clock()
        )
        row, created = await self.store.insert_price(
            price.model, price.currency_code, rates, effective
        )
        stored = price_version_of(row)
        if not created and (
            stored.rates != rates
            or stored.currency_code != (price.currency_code or stored.currency_code)
        ):
            raise AlreadyExists(
                f"model {price.model!r} already has a different price effective from "
                f"{effective.isoformat()}; versions are immutable, add one with a later "
                "effective_from",
                reason="PRICE_VERSION_EXISTS",
                metadata={"model": price.model, "version": str(stored.version)},
            )
        await self.prices.reload()
        return convert.price_to_pb(stored)

    async def _price(self, model: str, at: datetime, field: str) -> PriceVersion:
        """The price of `model` at `at`; unknown models fail closed."""
        found = await self.prices.at(model, at)
        if found is None:
            raise FailedPrecondition(
                f"model {model!r} has no price at {at.isoformat()}; usage is never rated at "
                "zero — add it to the price book (UpsertPrice, cost:admin)",
                reason="UNKNOWN_MODEL",
                metadata={"model": model, "field": field},
            )
        return found

    async def _while_price_changes(
        self, rate_and_write: Callable[[], Awaitable[Outcome]]
    ) -> Outcome:
        """Runs `rate_and_write` again with the reloaded price book while the
        database finds the price version it rated with no longer in effect."""
        for _ in range(PRICE_RETRIES):
            outcome = await rate_and_write()
            if outcome.kind != reservations.PRICE_CHANGED:
                break
            await self.prices.reload()
        return outcome

    # -- metering -----------------------------------------------------------

    async def RecordUsage(self, request: pb.RecordUsageRequest, context: Any) -> pb.UsageRecord:
        tenant = principal().tenant_id
        now = self.clock()
        requested = convert.from_ts(request.usage_time) if request.HasField("usage_time") else None
        with _refusals():
            usage_time = reservations.usage_time(requested, now)
        attribution = reservations.attributed(request.attribution, principal().user_id)
        request_hash = reservations.usage_digest(request, attribution)

        async def record() -> Outcome:
            price = await self._price(request.usage.model, usage_time, "usage.model")
            return await self.store.record_usage(
                tenant,
                request.idempotency_key,
                self._usage_input(request.usage, request.provenance, price, request_hash),
                (attribution.user_id, attribution.api_key_id, attribution.task),
                usage_time,
                period_starts(usage_time),
                now,
            )

        outcome = await self._while_price_changes(record)
        usage = outcome.row["usage"]
        with _refusals():
            answer = reservations.record_answer(
                outcome.kind, usage, request.idempotency_key, request_hash
            )
        if answer is reservations.Answer.NEW:
            metrics.metered(usage)
        return convert.usage_to_pb(usage)

    def _usage_input(
        self, usage: pb.TokenUsage, provenance: int, price: PriceVersion, request_hash: bytes
    ) -> UsageInput:
        tokens = Tokens(
            input=usage.input_tokens,
            output=usage.output_tokens,
            cached_input=usage.cached_input_tokens,
            cache_write=usage.cache_write_tokens,
        )
        return UsageInput(
            usage_id=_new_id(),
            model=usage.model,
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cached_input_tokens=tokens.cached_input,
            cache_write_tokens=tokens.cache_write,
            provenance=provenance or pb.PROVENANCE_MEASURED,
            amount_micros=cost_micros(tokens, price.rates),
            currency_code=price.currency_code,
            price_version=price.version,
            request_hash=request_hash,
        )

    async def ListUsage(self, request: pb.ListUsageRequest, context: Any) -> pb.ListUsageResponse:
        tenant = principal().tenant_id
        start, end = self._range(request, default_start=EPOCH)
        size = clamp_page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        # Bound to the range the caller asked for (a defaulted end moves with the
        # clock; later pages are bounded by the cursor anyway).
        binding = {
            "rpc": "ListUsage",
            "start": request.start_time.ToJsonString() if request.HasField("start_time") else "",
            "end": request.end_time.ToJsonString() if request.HasField("end_time") else "",
        }
        before = (end, "~")
        if request.page_token:
            position = self.tokens.decode(request.page_token, tenant, binding)
            before = (datetime.fromisoformat(str(position["t"])), str(position["i"]))
        rows = await self.store.usage_page(tenant, start, end, before, size + 1)
        response = pb.ListUsageResponse(usage_records=[convert.usage_to_pb(r) for r in rows[:size]])
        if len(rows) > size:
            last = rows[size - 1]
            response.next_page_token = self.tokens.encode(
                tenant, binding, {"t": last["usage_time"].isoformat(), "i": last["id"]}
            )
        return response

    async def EstimateCost(
        self, request: pb.EstimateCostRequest, context: Any
    ) -> pb.EstimateCostResponse:
        price = await self._price(request.model, self.clock(), "model")
        return pb.EstimateCostResponse(
            amount_micros=estimate_micros(
                request.input_tokens, request.max_output_tokens, price.rates
            ),
            currency_code=price.currency_code,
            price_version=price.version,
        )

    # -- budgets ------------------------------------------------------------

    @staticmethod
    def _spec(budget: pb.Budget) -> budget_rules.BudgetSpec:
        return budget_rules.BudgetSpec(
            display_name=budget.display_name,
            scope_kind=budget.scope_kind,
            scope_id=budget.scope_id,
            period=budget.period,
            hard_limit_micros=budget.hard_limit_micros,
            soft_limit_micros=budget.soft_limit_micros,
            alert_thresholds=tuple(sorted(budget.alert_thresholds_percent)),
        )

    @staticmethod
    def _fields(spec: budget_rules.BudgetSpec) -> BudgetFields:
        return BudgetFields(
            display_name=spec.display_name,
            scope_kind=spec.scope_kind,
            scope_id=spec.scope_id,
            period=spec.period,
            hard_limit_micros=spec.hard_limit_micros,
            soft_limit_micros=spec.soft_limit_micros,
            alert_thresholds=list(spec.alert_thresholds),
        )

    async def _budgets_to_pb(self, tenant: str, rows: list[Row]) -> list[pb.Budget]:
        now = self.clock()
        spent = await self.store.budget_spend(tenant, [r["pk"] for r in rows], period_starts(now))
        return [
            convert.budget_to_pb(r, spent.get(r["pk"], 0), period_start(Period(r["period"]), now))
            for r in rows
        ]

    async def CreateBudget(self, request: pb.CreateBudgetRequest, context: Any) -> pb.Budget:
        tenant = principal().tenant_id
        spec = self._spec(request.budget)
        budget_rules.validate(spec)
        if request.budget_id == TIER_BUDGET_ID:
            raise InvalidArgument.for_field(
                "budget_id", f"{TIER_BUDGET_ID!r} is reserved for the tenant tier's budget"
            )
        budget_id = request.budget_id or _new_id()[:20]
        fingerprint = pb.CreateBudgetRequest()
        fingerprint.CopyFrom(request)
        fingerprint.request_id = ""
        request_hash = request_digest(fingerprint)
        created, existing = await self.store.create_budget(
            tenant, budget_id, self._fields(spec), request.request_id, request_hash, self.clock()
        )
        if created is not None:
            return (await self._budgets_to_pb(tenant, [created]))[0]
        assert existing is not None
        if request.request_id and existing["request_id"] == request.request_id:
            ensure_replay(
                existing["request_hash"],
                request_hash,
                "request_id",
                request.request_id,
                "a different budget",
            )
            return (await self._budgets_to_pb(tenant, [existing]))[0]
        raise AlreadyExists(
            f"budget {budget_id!r} already exists",
            reason="BUDGET_EXISTS",
            metadata={"name": f"budgets/{budget_id}"},
        )

    @staticmethod
    def _guard_tier_budget(name: str) -> None:
        """`budgets/tier` is the tenant tier's monthly cap: only UpdateTenantTier
        (cost:admin) changes it, or a tenant could lift its own tier's limit."""
        if name == f"budgets/{TIER_BUDGET_ID}":
            raise FailedPrecondition(
                f"{name} is the tenant tier's budget; it changes with UpdateTenantTier only",
                reason="TIER_BUDGET_MANAGED",
                metadata={"name": name},
            )

    async def _budget_row(self, tenant: str, name: str) -> Row:
        row = await self.store.get_budget(tenant, _resource_id(name, "budgets/"))
        if row is None:
            raise NotFound(f"{name} not found", reason="BUDGET_NOT_FOUND", metadata={"name": name})
        return row

    async def GetBudget(self, request: pb.GetBudgetRequest, context: Any) -> pb.Budget:
        tenant = principal().tenant_id
        row = await self._budget_row(tenant, request.name)
        return (await self._budgets_to_pb(tenant, [row]))[0]

    async def ListBudgets(
        self, request: pb.ListBudgetsRequest, context: Any
    ) -> pb.ListBudgetsResponse:
        tenant = principal().tenant_id
        size = clamp_page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        binding = {"rpc": "ListBudgets"}
        after = ""
        if request.page_token:
            after = str(self.tokens.decode(request.page_token, tenant, binding)["i"])
        rows = await self.store.budgets_page(tenant, after, size + 1)
        response = pb.ListBudgetsResponse(budgets=await self._budgets_to_pb(tenant, rows[:size]))
        if len(rows) > size:
            response.next_page_token = self.tokens.encode(
                tenant, binding, {"i": rows[size - 1]["id"]}
            )
        return response

    @staticmethod
    def _check_etag(row: Row, expected: str) -> None:
        if expected and expected != budget_rules.etag(row["id"], row["revision"]):
            raise Aborted(
                f"budgets/{row['id']} changed since it was read (etag mismatch); read it again",
                reason="ETAG_MISMATCH",
                metadata={"name": f"budgets/{row['id']}"},
            )

    async def UpdateBudget(self, request: pb.UpdateBudgetRequest, context: Any) -> pb.Budget:
        tenant = principal().tenant_id
        name = request.budget.name
        if not name.startswith("budgets/") or not name.removeprefix("budgets/"):
            raise InvalidArgument.for_field("budget.name", "must be budgets/{budget}")
        self._guard_tier_budget(name)
        wanted = self._spec(request.budget)

        def change(current: Row) -> BudgetFields:
            self._check_etag(current, request.budget.etag)
            merged = budget_rules.apply_mask(
                budget_rules.BudgetSpec(
                    display_name=current["display_name"],
                    scope_kind=current["scope_kind"],
                    scope_id=current["scope_id"],
                    period=current["period"],
                    hard_limit_micros=current["hard_limit_micros"],
                    soft_limit_micros=current["soft_limit_micros"],
                    alert_thresholds=tuple(current["alert_thresholds"]),
                ),
                wanted,
                list(request.update_mask.paths),
                request.budget,
            )
            budget_rules.validate(merged)
            return self._fields(merged)

        row = await self.store.update_budget(
            tenant, _resource_id(name, "budgets/"), change, self.clock()
        )
        if row is None:
            raise NotFound(f"{name} not found", reason="BUDGET_NOT_FOUND", metadata={"name": name})
        return (await self._budgets_to_pb(tenant, [row]))[0]

    async def DeleteBudget(
        self, request: pb.DeleteBudgetRequest, context: Any
    ) -> pb.DeleteBudgetResponse:
        tenant = principal().tenant_id
        self._guard_tier_budget(request.name)
        deleted = await self.store.delete_budget(
            tenant,
            _resource_id(request.name, "budgets/"),
            lambda row: self._check_etag(row, request.etag),
        )
        if not deleted:
            raise NotFound(
                f"{request.name} not found",
                reason="BUDGET_NOT_FOUND",
                metadata={"name": request.name},
            )
        return pb.DeleteBudgetResponse()

    # -- reservations -------------------------------------------------------

    async def Reserve(self, request: pb.ReserveRequest, context: Any) -> pb.Reservation:
        tenant = principal().tenant_id
        now = self.clock()
        if request.WhichOneof("amount") == "estimate":
            estimate = request.estimate
            price = await self._price(estimate.model, now, "estimate.model")
            amount = estimate_micros(estimate.input_tokens, estimate.max_output_tokens, price.rates)
        else:
            amount = request.amount_micros
        ttl = request.ttl.ToTimedelta() if request.HasField("ttl") else None
        attribution = reservations.attributed(request.attribution, principal().user_id)
        request_hash = reservations.reserve_digest(request, attribution)
        outcome = await self.store.reserve(
            tenant,
            _new_id(),
            request.request_id,
            request_hash,
            amount,
            (attribution.user_id, attribution.api_key_id, attribution.task),
            now,
            reservations.expire_time(now, ttl),
            period_starts(now),
        )
        with _refusals():
            answer = reservations.reserve_answer(
                outcome.kind, outcome.row, request.request_id, request_hash, amount
            )
        reservation = outcome.row["reservation"]
        if answer is reservations.Answer.REPLAY:
            return await self._reservation(tenant, reservation["id"])
        return convert.reservation_to_pb(reservation)

    async def _reservation(self, tenant: str, reservation_id: str) -> pb.Reservation:
        row = await self.store.get_reservation(tenant, reservation_id)
        if row is None:
            raise NotFound(
                f"reservations/{reservation_id} not found", reason="RESERVATION_NOT_FOUND"
            )
        usage = row["u"]
        return convert.reservation_to_pb(
            row["r"], usage if usage and usage["id"] else None, now=self.clock()
        )

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: Any
    ) -> pb.Reservation:
        tenant = principal().tenant_id
        reservation_id = _resource_id(request.name, "reservations/")
        request_hash = reservations.commit_digest(request)

        async def commit() -> Outcome:
            now = self.clock()
            price = await self._price(request.usage.model, now, "usage.model")
            return await self.store.commit(
                tenant,
                reservation_id,
                self._usage_input(request.usage, request.provenance, price, request_hash),
                now,
                period_starts(now),
            )

        outcome = await self._while_price_changes(commit)
        row = outcome.row
        with _refusals(request.name):
            answer = reservations.settle_answer(
                outcome.kind, row["reservation"], reservations.COMMITTED
            )
        if answer is reservations.Answer.NEW:
            metrics.metered(row["usage"])
        return convert.reservation_to_pb(row["reservation"], row["usage"])

    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: Any
    ) -> pb.Reservation:
        tenant = principal().tenant_id
        outcome = await self.store.release(
            tenant, _resource_id(request.name, "reservations/"), self.clock()
        )
        reservation = outcome.row["reservation"]
        with _refusals(request.name):
            reservations.settle_answer(outcome.kind, reservation, reservations.RELEASED)
        return convert.reservation_to_pb(reservation)

    async def Charge(self, request: pb.ChargeRequest, context: Any) -> pb.ChargeResponse:
        tenant = principal().tenant_id
        attribution = reservations.attributed(request.attribution, principal().user_id)
        request_hash = reservations.charge_digest(request, attribution)
        amount = 0

        async def charge() -> Outcome:
            nonlocal amount
            now = self.clock()
            price = await self._price(request.usage.model, now, "usage.model")
            usage = self._usage_input(request.usage, request.provenance, price, request_hash)
            amount = usage.amount_micros
            return await self.store.charge(
                tenant,
                reservations.charge_key(request.request_id),
                usage,
                (attribution.user_id, attribution.api_key_id, attribution.task),
                now,
                period_starts(now),
            )

        outcome = await self._while_price_changes(charge)
        with _refusals():
            answer = reservations.charge_answer(
                outcome.kind, outcome.row, request.request_id, request_hash, amount
            )
        usage = outcome.row["usage"]
        if answer is reservations.Answer.NEW:
            metrics.metered(usage)
        return pb.ChargeResponse(usage_record=convert.usage_to_pb(usage))

    # -- reports ------------------------------------------------------------

    def _range(
        self, request: Any, default_start: datetime | None = None
    ) -> tuple[datetime, datetime]:
        now = self.clock()
        start = (
            convert.from_ts(request.start_time)
            if request.HasField("start_time")
            else (default_start if default_start is not None else month_start(now))
        )
        end = convert.from_ts(request.end_time) if request.HasField("end_time") else now
        if request.HasField("end_time") and end <= start:
            raise InvalidArgument.for_field("end_time", "must be after start_time")
        return start, max(end, start)

    async def GetSpendReport(
        self, request: pb.GetSpendReportRequest, context: Any
    ) -> pb.SpendReport:
        tenant = principal().tenant_id
        start, end = self._range(request)
        group_by = request.group_by or pb.GROUP_BY_MODEL
        rows = await self.store.spend_report(tenant, start, end, group_by)
        report = pb.SpendReport(
            rows=[convert.report_row_to_pb(r) for r in rows],
            currency_code="USD",
            start_time=convert.ts(start),
            end_time=convert.ts(end),
        )
        total = report.total
        for row in report.rows:
            total.record_count += row.record_count
            total.input_tokens += row.input_tokens
            total.output_tokens += row.output_tokens
            total.cached_input_tokens += row.cached_input_tokens
            total.cache_write_tokens += row.cache_write_tokens
            total.amount_micros += row.amount_micros
        total.key = "total"
        return report

    async def ExportSpend(
        self, request: pb.ExportSpendRequest, context: Any
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        tenant = principal().tenant_id
        start, end = self._range(request)
        after = (start - timedelta(microseconds=1), "")
        header = True
        while True:
            rows = await self.store.export_page(
                tenant, start, end, after, self.options.export_page_rows
            )
            if rows or header:
                yield httpbody_pb2.HttpBody(
                    content_type="text/csv; charset=utf-8", data=export.to_csv(rows, header=header)
                )
            header = False
            if len(rows) < self.options.export_page_rows:
                return
            after = (rows[-1]["usage_time"], rows[-1]["id"])

    async def WatchSpend(
        self, request: pb.WatchSpendRequest, context: Any
    ) -> AsyncIterator[pb.SpendEvent]:
        tenant = principal().tenant_id

        async def events() -> AsyncIterator[pb.SpendEvent]:
            rows = feed.follow(
                self.store,
                self.hub,
                tenant,
                request.after_sequence,
                self.options.watch_batch_size,
                self.options.watch_recheck_seconds,
            )
            async with aclosing(rows):
                async for row in rows:
                    yield convert.event_to_pb(row)

        def heartbeat(last: pb.SpendEvent | None) -> pb.SpendEvent:
            head = request.after_sequence if last is None else last.sequence
            stamp = heartbeats.now()
            return pb.SpendEvent(time=stamp, heartbeat=pb.Heartbeat(head_sequence=head, time=stamp))

        async for event in heartbeats.with_heartbeats(
            events(), self.options.watch_heartbeat_seconds, heartbeat
        ):
            yield event

    # -- tiers --------------------------------------------------------------

    def _tier_to_pb(self, tenant: str, tier_name: str) -> pb.TenantTier:
        tier = self.tiers.get(tier_name)
        return pb.TenantTier(
            name=f"tenants/{tenant}/tier",
            tier=tier_name,
            monthly_budget_micros=tier.monthly_budget_micros if tier else 0,
            requests_per_minute=tier.requests_per_minute if tier else 0,
        )

    async def GetTenantTier(self, request: pb.GetTenantTierRequest, context: Any) -> pb.TenantTier:
        tenant = principal().tenant_id
        asked = request.name.removeprefix("tenants/").removesuffix("/tier")
        if asked != tenant:
            raise NotFound(f"{request.name} not found", reason="TIER_NOT_FOUND")
        row = await self.store.get_tier(tenant)
        if row is None:
            raise NotFound(
                f"tenant {tenant!r} has no tier (its calls are not rate limited)",
                reason="TIER_NOT_SET",
            )
        return self._tier_to_pb(tenant, row["tier"])

    async def UpdateTenantTier(
        self, request: pb.UpdateTenantTierRequest, context: Any
    ) -> pb.TenantTier:
        name = request.tier.name
        tenant = name.removeprefix("tenants/").removesuffix("/tier")
        if not name.startswith("tenants/") or not name.endswith("/tier") or not tenant:
            raise InvalidArgument.for_field("tier.name", "must be tenants/{tenant}/tier")
        tier = self.tiers.get(request.tier.tier)
        if tier is None:
            raise InvalidArgument.for_field("tier.tier", f"one of {', '.join(sorted(self.tiers))}")
        await self.store.set_tier(
            tenant,
            tier.name,
            (
                TIER_BUDGET_ID,
                f"{tier.name} tier monthly budget",
                tier.monthly_budget_micros,
                list(TIER_ALERT_THRESHOLDS),
            ),
            self.clock(),
        )
        if self.limiter is not None:
            self.limiter.set_tier(tenant, tier.name)
        return self._tier_to_pb(tenant, tier.name)

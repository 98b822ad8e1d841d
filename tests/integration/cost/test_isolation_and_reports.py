"""Tenant isolation of every read; spend reports, CSV export, and the resumable
spend feed; tiers and rate limits."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from datetime import timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.cost.periods import utc_now
from tests.integration.conftest import Metadata
from tests.integration.cost.helpers import detail, micro_per_token_model, stamp, tenant_budget


async def test_tenant_b_sees_nothing_of_tenant_a(
    stub: pb_grpc.CostServiceStub, as_tenant: Callable[..., Metadata], admin: Metadata, tenant: str
) -> None:
    a, b = as_tenant(tenant), as_tenant(tenant + "-b")
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, a, hard=10_000)
    r = await stub.Reserve(pb.ReserveRequest(amount_micros=100), metadata=a)
    await stub.RecordUsage(
        pb.RecordUsageRequest(
            usage=pb.TokenUsage(model=model, input_tokens=5), idempotency_key="x"
        ),
        metadata=a,
    )
    assert not (await stub.ListBudgets(pb.ListBudgetsRequest(), metadata=b)).budgets
    assert not (await stub.ListUsage(pb.ListUsageRequest(), metadata=b)).usage_records
    assert not (await stub.GetSpendReport(pb.GetSpendReportRequest(), metadata=b)).rows
    exported = b"".join(
        [c.data async for c in stub.ExportSpend(pb.ExportSpendRequest(), metadata=b)]
    )
    assert len(exported.decode().strip().splitlines()) == 1  # header only
    for call in (
        stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=b),
        stub.DeleteBudget(pb.DeleteBudgetRequest(name=budget.name), metadata=b),
        stub.CommitReservation(
            pb.CommitReservationRequest(name=r.name, usage=pb.TokenUsage(model=model)), metadata=b
        ),
        stub.ReleaseReservation(pb.ReleaseReservationRequest(name=r.name), metadata=b),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # The same idempotency key in another tenant is another event.
    other = await stub.RecordUsage(
        pb.RecordUsageRequest(
            usage=pb.TokenUsage(model=model, input_tokens=6), idempotency_key="x"
        ),
        metadata=b,
    )
    assert other.usage.input_tokens == 6
    # B's feed holds only B's event; A's budget was not charged by B.
    call = stub.WatchSpend(pb.WatchSpendRequest(), metadata=b)
    first = await call.read()
    assert first.usage.name == other.name
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call.read(), 0.3)
    call.cancel()
    assert (
        await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=a)
    ).spent_micros == 5


async def test_spend_report_groups_and_totals(
    stub: pb_grpc.CostServiceStub, as_tenant: Callable[..., Metadata], admin: Metadata, tenant: str
) -> None:
    model = await micro_per_token_model(stub, admin, utc_now() - timedelta(days=30))
    day1 = utc_now().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=2)
    plan = [("alice", 10, 0), ("alice", 20, 1), ("bob", 30, 1), ("bob", 5, 0)]
    for i, (user, tokens, day) in enumerate(plan):
        await stub.RecordUsage(
            pb.RecordUsageRequest(
                usage=pb.TokenUsage(model=model, input_tokens=tokens),
                idempotency_key=f"r-{i}",
                usage_time=stamp(day1 + timedelta(days=day)),
            ),
            metadata=as_tenant(tenant, user=user),
        )
    auth = as_tenant(tenant)
    window = {"start_time": stamp(day1 - timedelta(days=1)), "end_time": stamp(utc_now())}
    by_user = await stub.GetSpendReport(
        pb.GetSpendReportRequest(group_by=pb.GROUP_BY_USER, **window), metadata=auth
    )
    assert [(r.key, r.amount_micros, r.record_count) for r in by_user.rows] == [
        ("alice", 30, 2),
        ("bob", 35, 2),
    ]
    assert by_user.total.amount_micros == 65
    by_day = await stub.GetSpendReport(
        pb.GetSpendReportRequest(group_by=pb.GROUP_BY_DAY, **window), metadata=auth
    )
    assert [r.amount_micros for r in by_day.rows] == [15, 50]
    assert by_day.rows[0].key == day1.strftime("%Y-%m-%d")
    by_model = await stub.GetSpendReport(pb.GetSpendReportRequest(**window), metadata=auth)
    assert [(r.key, r.input_tokens) for r in by_model.rows] == [(model, 65)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetSpendReport(
            pb.GetSpendReportRequest(start_time=window["end_time"], end_time=window["start_time"]),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_export_streams_csv_in_pages_with_a_header(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    for i in range(16):  # the test server pages every 7 rows
        await stub.RecordUsage(
            pb.RecordUsageRequest(
                usage=pb.TokenUsage(model=model, input_tokens=i),
                idempotency_key=f"csv-{i}",
                attribution=pb.Attribution(api_key_id='key, "quoted"'),
            ),
            metadata=auth,
        )
    chunks = [c async for c in stub.ExportSpend(pb.ExportSpendRequest(), metadata=auth)]
    assert len(chunks) == 3
    assert all(c.content_type.startswith("text/csv") for c in chunks)
    rows = list(csv.DictReader(io.StringIO(b"".join(c.data for c in chunks).decode())))
    assert [int(r["input_tokens"]) for r in rows] == list(range(16))
    assert {r["api_key_id"] for r in rows} == {'key, "quoted"'}
    assert sum(int(r["amount_micros"]) for r in rows) == sum(range(16))


async def test_watch_resumes_after_a_sequence_and_delivers_live(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)

    async def record(i: int) -> pb.UsageRecord:
        return await stub.RecordUsage(
            pb.RecordUsageRequest(
                usage=pb.TokenUsage(model=model, input_tokens=i), idempotency_key=f"w-{i}"
            ),
            metadata=auth,
        )

    for i in range(3):
        await record(i)
    call = stub.WatchSpend(pb.WatchSpendRequest(after_sequence=2), metadata=auth)
    replayed = await call.read()
    assert (replayed.sequence, replayed.usage.usage.input_tokens) == (3, 2)
    live = asyncio.create_task(call.read())
    # A quiet window is the check here: nothing more arrives before there is something new.
    done, _ = await asyncio.wait({live}, timeout=0.1)
    assert not done
    await record(3)
    event = await asyncio.wait_for(live, 2.0)
    assert (event.sequence, event.usage.usage.input_tokens) == (4, 3)
    call.cancel()


async def test_tiers_are_visible_to_their_tenant_only_and_set_by_admins(
    stub: pb_grpc.CostServiceStub, as_tenant: Callable[..., Metadata], admin: Metadata, tenant: str
) -> None:
    auth = as_tenant(tenant)
    name = f"tenants/{tenant}/tier"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetTenantTier(pb.GetTenantTierRequest(name=name), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpdateTenantTier(
            pb.UpdateTenantTierRequest(tier=pb.TenantTier(name=name, tier="pro")), metadata=auth
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    set_ = await stub.UpdateTenantTier(
        pb.UpdateTenantTierRequest(tier=pb.TenantTier(name=name, tier="pro")), metadata=admin
    )
    assert (set_.monthly_budget_micros, set_.requests_per_minute) == (25_000_000, 100)
    assert await stub.GetTenantTier(pb.GetTenantTierRequest(name=name), metadata=auth) == set_
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetTenantTier(
            pb.GetTenantTierRequest(name=name), metadata=as_tenant(tenant + "-x")
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    tier_budget = await stub.GetBudget(pb.GetBudgetRequest(name="budgets/tier"), metadata=auth)
    assert (tier_budget.hard_limit_micros, tier_budget.period) == (25_000_000, pb.PERIOD_MONTH)


async def test_a_tenant_cannot_lift_its_tier_budget(
    stub: pb_grpc.CostServiceStub, as_tenant: Callable[..., Metadata], admin: Metadata, tenant: str
) -> None:
    auth = as_tenant(tenant)
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # nor squat its id beforehand
        await stub.CreateBudget(
            pb.CreateBudgetRequest(
                budget_id="tier",
                budget=pb.Budget(
                    scope_kind=pb.SCOPE_KIND_USER,
                    scope_id="alice",
                    period=pb.PERIOD_DAY,
                    hard_limit_micros=10**12,
                ),
            ),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    name = f"tenants/{tenant}/tier"
    await stub.UpdateTenantTier(
        pb.UpdateTenantTierRequest(tier=pb.TenantTier(name=name, tier="free")), metadata=admin
    )
    lifted = pb.Budget(name="budgets/tier", hard_limit_micros=10**12)
    for call in (
        stub.UpdateBudget(
            pb.UpdateBudgetRequest(
                budget=lifted, update_mask=field_mask_pb2.FieldMask(paths=["hard_limit_micros"])
            ),
            metadata=auth,
        ),
        stub.DeleteBudget(pb.DeleteBudgetRequest(name="budgets/tier"), metadata=auth),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = detail(caught.value, error_details_pb2.ErrorInfo)
        assert info is not None
        assert info.reason == "TIER_BUDGET_MANAGED"
    # The free tier's $0.50 a month holds.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Reserve(pb.ReserveRequest(amount_micros=500_001), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_free_tier_tenant_is_rate_limited_with_a_retry_delay(
    stub: pb_grpc.CostServiceStub, as_tenant: Callable[..., Metadata], admin: Metadata, tenant: str
) -> None:
    await stub.UpdateTenantTier(
        pb.UpdateTenantTierRequest(tier=pb.TenantTier(name=f"tenants/{tenant}/tier", tier="free")),
        metadata=admin,
    )
    auth = as_tenant(tenant)
    codes = []
    for _ in range(12):
        try:
            await stub.ListBudgets(pb.ListBudgetsRequest(), metadata=auth)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
            last = exc
    assert codes.count(grpc.StatusCode.OK) == 10
    assert codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = detail(last, error_details_pb2.RetryInfo)
    assert retry is not None
    assert retry.retry_delay.ToNanoseconds() > 0

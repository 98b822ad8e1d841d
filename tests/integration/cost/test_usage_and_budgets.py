"""RecordUsage idempotency, ListUsage paging, budget CRUD with etags and masks,
threshold alerts."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from tests.integration.conftest import Metadata
from tests.integration.cost.helpers import detail, micro_per_token_model, tenant_budget


def usage(model: str, key: str, tokens: int = 100) -> pb.RecordUsageRequest:
    return pb.RecordUsageRequest(
        usage=pb.TokenUsage(model=model, input_tokens=tokens), idempotency_key=key
    )


async def test_a_retried_event_is_metered_once(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=10_000)
    records = await asyncio.gather(
        *(stub.RecordUsage(usage(model, "evt-1"), metadata=auth) for _ in range(20))
    )
    assert len({r.name for r in records}) == 1
    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert got.spent_micros == 100
    listed = await stub.ListUsage(pb.ListUsageRequest(), metadata=auth)
    assert len(listed.usage_records) == 1


async def test_same_key_with_another_payload_is_already_exists(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    first = await stub.RecordUsage(usage(model, "evt-2"), metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RecordUsage(usage(model, "evt-2", tokens=101), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert info is not None
    assert info.reason == "IDEMPOTENCY_KEY_REUSED"
    assert info.metadata["usage_record"] == first.name


async def test_list_usage_pages_newest_first(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    for i in range(7):
        await stub.RecordUsage(usage(model, f"page-{i}", tokens=i + 1), metadata=auth)
    seen: list[pb.UsageRecord] = []
    token = ""
    while True:
        page = await stub.ListUsage(
            pb.ListUsageRequest(page_size=3, page_token=token), metadata=auth
        )
        seen.extend(page.usage_records)
        token = page.next_page_token
        if not token:
            break
    assert [r.usage.input_tokens for r in seen] == [7, 6, 5, 4, 3, 2, 1]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListUsage(pb.ListUsageRequest(page_token="garbage"), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "request_",
    [
        pb.RecordUsageRequest(usage=pb.TokenUsage(model="gpt-4o-mini", input_tokens=1)),  # no key
        pb.RecordUsageRequest(
            usage=pb.TokenUsage(model="gpt-4o-mini", input_tokens=-1), idempotency_key="k"
        ),
        pb.RecordUsageRequest(
            usage=pb.TokenUsage(model="bad model!", input_tokens=1), idempotency_key="k"
        ),
        pb.RecordUsageRequest(
            usage=pb.TokenUsage(model="gpt-4o-mini", output_tokens=10**9), idempotency_key="k"
        ),
        pb.RecordUsageRequest(idempotency_key="k"),  # no usage
    ],
)
async def test_bad_usage_is_invalid(
    stub: pb_grpc.CostServiceStub, auth: Metadata, request_: pb.RecordUsageRequest
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RecordUsage(request_, metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_budget_crud_with_etags_and_update_masks(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    created = await stub.CreateBudget(
        pb.CreateBudgetRequest(
            budget_id="team",
            budget=pb.Budget(
                display_name="Team",
                scope_kind=pb.SCOPE_KIND_USER,
                scope_id="bob",
                period=pb.PERIOD_DAY,
                soft_limit_micros=500,
            ),
        ),
        metadata=auth,
    )
    assert created.name == "budgets/team"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBudget(
            pb.CreateBudgetRequest(budget_id="team", budget=created), metadata=auth
        )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS

    mask = field_mask_pb2.FieldMask(paths=["hard_limit_micros", "display_name"])
    change = pb.Budget(
        name=created.name, hard_limit_micros=900, display_name="Team B", etag=created.etag
    )
    updated = await stub.UpdateBudget(
        pb.UpdateBudgetRequest(budget=change, update_mask=mask), metadata=auth
    )
    assert (updated.hard_limit_micros, updated.display_name, updated.soft_limit_micros) == (
        900,
        "Team B",
        500,
    )
    assert updated.etag != created.etag
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # stale etag
        await stub.UpdateBudget(
            pb.UpdateBudgetRequest(budget=change, update_mask=mask), metadata=auth
        )
    assert caught.value.code() == grpc.StatusCode.ABORTED
    immutable = field_mask_pb2.FieldMask(paths=["scope_id"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpdateBudget(
            pb.UpdateBudgetRequest(
                budget=pb.Budget(name=created.name, scope_id="x"), update_mask=immutable
            ),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # soft above hard
        await stub.UpdateBudget(
            pb.UpdateBudgetRequest(
                budget=pb.Budget(name=created.name, soft_limit_micros=10_000),
                update_mask=field_mask_pb2.FieldMask(paths=["soft_limit_micros"]),
            ),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    listed = await stub.ListBudgets(pb.ListBudgetsRequest(), metadata=auth)
    assert [b.name for b in listed.budgets] == ["budgets/team"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.DeleteBudget(
            pb.DeleteBudgetRequest(name=created.name, etag=created.etag), metadata=auth
        )
    assert caught.value.code() == grpc.StatusCode.ABORTED
    await stub.DeleteBudget(
        pb.DeleteBudgetRequest(name=created.name, etag=updated.etag), metadata=auth
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBudget(pb.GetBudgetRequest(name=created.name), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_create_budget_is_idempotent_by_request_id(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    request = pb.CreateBudgetRequest(
        request_id="rq-1",
        budget=pb.Budget(
            scope_kind=pb.SCOPE_KIND_TENANT, period=pb.PERIOD_TOTAL, hard_limit_micros=5
        ),
    )
    first, second = await asyncio.gather(
        stub.CreateBudget(request, metadata=auth), stub.CreateBudget(request, metadata=auth)
    )
    assert first.name == second.name
    request.budget.hard_limit_micros = 6
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBudget(request, metadata=auth)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    "budget",
    [
        pb.Budget(period=pb.PERIOD_DAY, hard_limit_micros=1),  # no scope
        pb.Budget(scope_kind=pb.SCOPE_KIND_TENANT, hard_limit_micros=1),  # no period
        pb.Budget(scope_kind=pb.SCOPE_KIND_TENANT, period=pb.PERIOD_DAY),  # no limit
        pb.Budget(scope_kind=pb.SCOPE_KIND_TENANT, period=pb.PERIOD_DAY, hard_limit_micros=-1),
        pb.Budget(
            scope_kind=pb.SCOPE_KIND_TENANT,
            period=pb.PERIOD_DAY,
            hard_limit_micros=1,
            alert_thresholds_percent=[50, 50],
        ),
    ],
)
async def test_bad_budgets_are_invalid(
    stub: pb_grpc.CostServiceStub, auth: Metadata, budget: pb.Budget
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBudget(pb.CreateBudgetRequest(budget=budget), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_thresholds_alert_once_per_period_on_the_spend_feed(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=1000, alert_thresholds_percent=[50, 80, 100])
    for i, tokens in enumerate((400, 200, 100, 300, 50)):  # 400, 600, 700, 1000, 1050
        await stub.RecordUsage(usage(model, f"a-{i}", tokens), metadata=auth)
    events = []
    call = stub.WatchSpend(pb.WatchSpendRequest(), metadata=auth)
    async for event in call:
        events.append(event)
        if len(events) == 8:
            break
    call.cancel()
    alerts = [
        (e.alert.threshold_percent, e.alert.spent_micros) for e in events if e.HasField("alert")
    ]
    assert alerts == [(50, 600), (80, 1000), (100, 1000)]
    assert all(e.alert.budget == budget.name for e in events if e.HasField("alert"))
    assert [e.sequence for e in events] == list(range(1, 9))


async def test_changing_the_period_recounts_the_current_spend(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=1_000, period=pb.PERIOD_MONTH)
    await stub.RecordUsage(
        pb.RecordUsageRequest(
            usage=pb.TokenUsage(model=model, input_tokens=600), idempotency_key="before"
        ),
        metadata=auth,
    )
    for period in (pb.PERIOD_TOTAL, pb.PERIOD_DAY):
        changed = await stub.UpdateBudget(
            pb.UpdateBudgetRequest(
                budget=pb.Budget(name=budget.name, period=period),
                update_mask=field_mask_pb2.FieldMask(paths=["period"]),
            ),
            metadata=auth,
        )
        assert (changed.period, changed.spent_micros) == (period, 600)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Reserve(pb.ReserveRequest(amount_micros=401), metadata=auth)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

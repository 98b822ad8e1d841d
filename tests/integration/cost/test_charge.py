"""Charge: reserve + commit in one call — the same record, spend, alerts and feed
as a commit, the same hard-limit refusal as Reserve, idempotent by request id,
and tenants kept apart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from tests.integration.conftest import Metadata
from tests.integration.cost.helpers import detail, micro_per_token_model, tenant_budget


def charge(model: str, request_id: str, tokens: int = 100, **kw: object) -> pb.ChargeRequest:
    return pb.ChargeRequest(
        usage=pb.TokenUsage(model=model, input_tokens=tokens, output_tokens=tokens // 2),
        request_id=request_id,
        **kw,  # type: ignore[arg-type]
    )


async def spend(stub: pb_grpc.CostServiceStub, auth: Metadata, name: str) -> tuple[int, int]:
    got = await stub.GetBudget(pb.GetBudgetRequest(name=name), metadata=auth)
    return got.spent_micros, got.reserved_micros


async def test_a_charge_records_usage_and_spends_every_applicable_budget(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    tenant_b = await tenant_budget(stub, auth, hard=10_000)
    user_b = await tenant_budget(
        stub, auth, hard=10_000, scope_kind=pb.SCOPE_KIND_USER, scope_id="alice"
    )
    task_b = await tenant_budget(
        stub, auth, hard=10_000, scope_kind=pb.SCOPE_KIND_TASK, scope_id="tasks/t1"
    )
    other = await tenant_budget(
        stub, auth, hard=10_000, scope_kind=pb.SCOPE_KIND_USER, scope_id="bob"
    )

    answer = await stub.Charge(
        charge(model, "call-1", attribution=pb.Attribution(task="tasks/t1")), metadata=auth
    )

    record = answer.usage_record
    assert record.name.startswith("usageRecords/")
    assert record.amount_micros == 100 + 2 * 50  # 1 per input token, 2 per output token
    assert record.idempotency_key == "charges/call-1"
    assert record.attribution == pb.Attribution(user_id="alice", task="tasks/t1")
    assert (record.reservation, record.over_estimate) == ("", False)
    assert record.usage.model == model
    for budget in (tenant_b, user_b, task_b):
        assert await spend(stub, auth, budget.name) == (200, 0)
    assert await spend(stub, auth, other.name) == (0, 0)
    listed = await stub.ListUsage(pb.ListUsageRequest(), metadata=auth)
    assert [r.name for r in listed.usage_records] == [record.name]
    report = await stub.GetSpendReport(pb.GetSpendReportRequest(), metadata=auth)
    assert report.total.amount_micros == 200


async def test_a_charge_alerts_and_feeds_watch_spend_like_a_commit(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=1000, alert_thresholds_percent=[50, 100])
    r = await stub.Reserve(pb.ReserveRequest(amount_micros=400), metadata=auth)
    committed = await stub.CommitReservation(
        pb.CommitReservationRequest(
            name=r.name, usage=pb.TokenUsage(model=model, input_tokens=400)
        ),
        metadata=auth,
    )
    charged = await stub.Charge(
        pb.ChargeRequest(usage=pb.TokenUsage(model=model, input_tokens=600), request_id="c"),
        metadata=auth,
    )
    events: list[pb.SpendEvent] = []
    call = stub.WatchSpend(pb.WatchSpendRequest(), metadata=auth)
    async for event in call:
        events.append(event)
        if len(events) == 4:
            break
    call.cancel()
    assert [e.WhichOneof("kind") for e in events] == ["usage", "alert", "alert", "usage"]
    assert events[0].usage == committed.usage_record
    assert [(e.alert.threshold_percent, e.alert.spent_micros) for e in events[1:3]] == [
        (50, 1000),
        (100, 1000),
    ]
    assert all(e.alert.budget == budget.name for e in events[1:3])
    assert events[3].usage == charged.usage_record
    assert await spend(stub, auth, budget.name) == (1000, 0)


async def test_a_retried_charge_is_charged_once_and_answers_the_same(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=10_000)
    first = await stub.Charge(charge(model, "retry-me"), metadata=auth)
    again = await stub.Charge(charge(model, "retry-me"), metadata=auth)
    concurrent = await asyncio.gather(
        *(stub.Charge(charge(model, "retry-me"), metadata=auth) for _ in range(10))
    )
    assert again == first
    assert all(answer == first for answer in concurrent)
    assert await spend(stub, auth, budget.name) == (200, 0)
    assert len((await stub.ListUsage(pb.ListUsageRequest(), metadata=auth)).usage_records) == 1


async def test_concurrent_first_tries_of_one_charge_write_one_record(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=10_000)
    answers = await asyncio.gather(
        *(stub.Charge(charge(model, "racing"), metadata=auth) for _ in range(20))
    )
    assert len({a.usage_record.name for a in answers}) == 1
    assert await spend(stub, auth, budget.name) == (200, 0)


async def test_another_request_under_a_used_request_id_already_exists(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=10_000)
    first = await stub.Charge(charge(model, "once"), metadata=auth)
    for different in (
        charge(model, "once", tokens=101),
        charge(model, "once", attribution=pb.Attribution(user_id="bob")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Charge(different, metadata=auth)
        assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
        info = detail(caught.value, error_details_pb2.ErrorInfo)
        assert info is not None
        assert info.reason == "REQUEST_ID_REUSED"
        assert info.metadata["request_id"] == "once"
        assert info.metadata["usage_record"] == first.usage_record.name
    assert await spend(stub, auth, budget.name) == (200, 0)


async def test_a_charge_key_never_meets_a_record_usage_key(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    charged = await stub.Charge(charge(model, "shared"), metadata=auth)
    recorded = await stub.RecordUsage(
        pb.RecordUsageRequest(
            usage=pb.TokenUsage(model=model, input_tokens=7), idempotency_key="shared"
        ),
        metadata=auth,
    )
    assert recorded.name != charged.usage_record.name
    assert recorded.usage.input_tokens == 7


async def test_a_charge_over_a_hard_budget_is_refused_and_records_nothing(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    roomy = await tenant_budget(stub, auth, hard=10_000)
    tight = await tenant_budget(
        stub, auth, hard=500, scope_kind=pb.SCOPE_KIND_USER, scope_id="alice"
    )
    await stub.Reserve(pb.ReserveRequest(amount_micros=250), metadata=auth)  # a hold counts
    await stub.Charge(charge(model, "fits", tokens=100), metadata=auth)  # 200: 450 of 500
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Charge(charge(model, "too-much", tokens=50), metadata=auth)  # 100 > 50 left
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    quota = detail(caught.value, error_details_pb2.QuotaFailure)
    assert quota is not None
    assert quota.violations[0].subject == tight.name
    assert "remaining 50 micros of 500" in quota.violations[0].description
    assert "requested 100" in quota.violations[0].description
    assert await spend(stub, auth, tight.name) == (200, 250)
    assert await spend(stub, auth, roomy.name) == (200, 250)
    listed = await stub.ListUsage(pb.ListUsageRequest(), metadata=auth)
    assert [r.idempotency_key for r in listed.usage_records] == ["charges/fits"]
    # Refused means not recorded: the same request id may be charged once there is room.
    await stub.UpdateBudget(
        pb.UpdateBudgetRequest(
            budget=pb.Budget(name=tight.name, hard_limit_micros=1000),
            update_mask=field_mask_pb2.FieldMask(paths=["hard_limit_micros"]),
        ),
        metadata=auth,
    )
    later = await stub.Charge(charge(model, "too-much", tokens=50), metadata=auth)
    assert later.usage_record.amount_micros == 100


async def test_a_free_model_charges_zero_and_an_unknown_model_is_refused(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    free = await stub.Charge(
        pb.ChargeRequest(
            usage=pb.TokenUsage(model="extractive-v1", input_tokens=10**6), request_id="free"
        ),
        metadata=auth,
    )
    assert free.usage_record.amount_micros == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Charge(charge("no-such-model", "unknown"), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert info is not None
    assert info.reason == "UNKNOWN_MODEL"


@pytest.mark.parametrize(
    "request_",
    [
        pb.ChargeRequest(usage=pb.TokenUsage(model="gpt-4o-mini", input_tokens=1)),  # no id
        pb.ChargeRequest(request_id="k"),  # no usage
        pb.ChargeRequest(usage=pb.TokenUsage(model="gpt-4o-mini", input_tokens=-1), request_id="k"),
        pb.ChargeRequest(
            usage=pb.TokenUsage(model="gpt-4o-mini", input_tokens=1), request_id="has/slash"
        ),
        pb.ChargeRequest(
            usage=pb.TokenUsage(model="gpt-4o-mini", input_tokens=1),
            request_id="k",
            attribution=pb.Attribution(task="not-a-task"),
        ),
    ],
)
async def test_bad_charges_are_invalid(
    stub: pb_grpc.CostServiceStub, auth: Metadata, request_: pb.ChargeRequest
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Charge(request_, metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_another_tenant_can_neither_charge_nor_see_a_tenants_budget(
    stub: pb_grpc.CostServiceStub, as_tenant: Callable[..., Metadata], admin: Metadata, tenant: str
) -> None:
    a, b = as_tenant(tenant), as_tenant(tenant + "-b")
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, a, hard=1_000)
    mine = await stub.Charge(charge(model, "same-id", tokens=100), metadata=a)

    # B's charge under A's request id is B's own new record, not a replay of A's,
    # and A's (nearly full) budget neither limits it nor is spent by it.
    theirs = await stub.Charge(charge(model, "same-id", tokens=1000), metadata=b)
    assert theirs.usage_record.name != mine.usage_record.name
    assert theirs.usage_record.amount_micros == 2000
    assert await spend(stub, a, budget.name) == (200, 0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=b)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert not (await stub.ListBudgets(pb.ListBudgetsRequest(), metadata=b)).budgets
    listed = await stub.ListUsage(pb.ListUsageRequest(), metadata=b)
    assert [r.name for r in listed.usage_records] == [theirs.usage_record.name]
    # B's own budget limits B only.
    await tenant_budget(stub, b, hard=10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Charge(charge(model, "b-2", tokens=100), metadata=b)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await stub.Charge(charge(model, "a-2", tokens=100), metadata=a)
    assert await spend(stub, a, budget.name) == (400, 0)

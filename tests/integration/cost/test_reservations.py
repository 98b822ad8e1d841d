"""Reserve → Commit | Release, and Charge: the hard-limit invariant under
concurrency (calls written in group-commit batches), expiry, commits above the
estimate, idempotency and terminal states."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.cost.group_commit import GroupCommit
from tests.integration.conftest import Metadata
from tests.integration.cost.conftest import MovableClock
from tests.integration.cost.helpers import detail, micro_per_token_model, tenant_budget

UNIT = 1000  # micros per reservation in the concurrency tests


async def reserve_many(
    stub: pb_grpc.CostServiceStub, auth: Metadata, count: int, amount: int, ttl_seconds: int = 300
) -> tuple[list[pb.Reservation], list[grpc.aio.AioRpcError]]:
    async def one() -> pb.Reservation | grpc.aio.AioRpcError:
        try:
            return await stub.Reserve(
                pb.ReserveRequest(
                    amount_micros=amount, ttl=duration_pb2.Duration(seconds=ttl_seconds)
                ),
                metadata=auth,
            )
        except grpc.aio.AioRpcError as exc:
            return exc

    results = await asyncio.gather(*(one() for _ in range(count)))
    ok = [r for r in results if isinstance(r, pb.Reservation)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    return ok, failed


async def test_200_concurrent_reserves_against_room_for_50_admit_exactly_50(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=50 * UNIT)
    ok, failed = await reserve_many(stub, auth, 200, UNIT)
    assert len(ok) == 50
    assert len(failed) == 150
    assert {e.code() for e in failed} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    quota = detail(failed[0], error_details_pb2.QuotaFailure)
    assert quota is not None
    assert quota.violations[0].subject == budget.name
    assert "remaining 0 micros" in quota.violations[0].description

    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert (got.spent_micros, got.reserved_micros) == (0, 50 * UNIT)

    # Settle all 50 concurrently: half below the estimate, half exactly at it.
    async def settle(i: int, r: pb.Reservation) -> pb.Reservation:
        tokens = UNIT // 2 if i % 2 else UNIT
        return await stub.CommitReservation(
            pb.CommitReservationRequest(
                name=r.name, usage=pb.TokenUsage(model=model, input_tokens=tokens)
            ),
            metadata=auth,
        )

    settled = await asyncio.gather(*(settle(i, r) for i, r in enumerate(ok)))
    total = sum(r.usage_record.amount_micros for r in settled)
    assert total == 25 * UNIT + 25 * UNIT // 2
    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert (got.spent_micros, got.reserved_micros) == (total, 0)
    report = await stub.GetSpendReport(pb.GetSpendReportRequest(), metadata=auth)
    assert report.total.amount_micros == total
    # The freed room is exactly limit - spent.
    ok, _ = await reserve_many(stub, auth, 100, UNIT)
    assert len(ok) == (50 * UNIT - total) // UNIT


async def test_200_concurrent_reserves_and_charges_against_room_for_50_admit_exactly_50(
    stub: pb_grpc.CostServiceStub,
    auth: Metadata,
    admin: Metadata,
    group_commit: GroupCommit[Any, Any],
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=50 * UNIT)
    usage = pb.TokenUsage(model=model, input_tokens=UNIT)  # costs exactly UNIT
    batched_before = group_commit.calls_written - group_commit.batches_written

    async def one(i: int) -> pb.Reservation | pb.ChargeResponse | grpc.aio.AioRpcError:
        try:
            if i % 2:
                return await stub.Charge(
                    pb.ChargeRequest(usage=usage, request_id=f"mixed-{i}"), metadata=auth
                )
            return await stub.Reserve(pb.ReserveRequest(amount_micros=UNIT), metadata=auth)
        except grpc.aio.AioRpcError as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(200)))
    held = [r for r in results if isinstance(r, pb.Reservation)]
    charged = [r for r in results if isinstance(r, pb.ChargeResponse)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(held) + len(charged) == 50
    assert len(failed) == 150
    assert {e.code() for e in failed} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    quota = detail(failed[0], error_details_pb2.QuotaFailure)
    assert quota is not None
    assert quota.violations[0].subject == budget.name
    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert (got.spent_micros, got.reserved_micros) == (len(charged) * UNIT, len(held) * UNIT)
    # Calls were written in batches (group commit), and the invariant held all the same.
    assert group_commit.calls_written - group_commit.batches_written > batched_before

    # Commits and more charges race: the holds turn into spend, the charges find no room.
    async def settle(r: pb.Reservation) -> pb.Reservation:
        return await stub.CommitReservation(
            pb.CommitReservationRequest(name=r.name, usage=usage), metadata=auth
        )

    late = await asyncio.gather(
        *(settle(r) for r in held),
        *(one(2 * i + 1001) for i in range(50)),
        return_exceptions=True,
    )
    assert all(isinstance(r, pb.Reservation) for r in late[: len(held)])
    assert all(
        isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for r in late[len(held) :]
    )
    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert (got.spent_micros, got.reserved_micros) == (50 * UNIT, 0)
    report = await stub.GetSpendReport(pb.GetSpendReportRequest(), metadata=auth)
    assert report.total.amount_micros == 50 * UNIT


async def test_200_concurrent_charges_against_room_for_50_charge_exactly_50(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=50 * UNIT)
    usage = pb.TokenUsage(model=model, input_tokens=UNIT)

    async def one(i: int) -> pb.ChargeResponse | grpc.aio.AioRpcError:
        try:
            return await stub.Charge(
                pb.ChargeRequest(usage=usage, request_id=f"c-{i}"), metadata=auth
            )
        except grpc.aio.AioRpcError as exc:
            return exc

    results = await asyncio.gather(*(one(i) for i in range(200)))
    charged = [r for r in results if isinstance(r, pb.ChargeResponse)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert (len(charged), len(failed)) == (50, 150)
    assert {e.code() for e in failed} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert (got.spent_micros, got.reserved_micros) == (50 * UNIT, 0)
    listed = await stub.ListUsage(pb.ListUsageRequest(page_size=1000), metadata=auth)
    assert len(listed.usage_records) == 50


async def test_expired_holds_free_room_and_overruns_are_recorded_and_flagged(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata, moved_clock: MovableClock
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=50 * UNIT)
    ok, failed = await reserve_many(stub, auth, 200, UNIT, ttl_seconds=60)
    assert (len(ok), len(failed)) == (50, 150)

    # 10 calls ran 50% over their estimate: spend is real, recorded and flagged.
    over = await asyncio.gather(
        *(
            stub.CommitReservation(
                pb.CommitReservationRequest(
                    name=r.name, usage=pb.TokenUsage(model=model, input_tokens=UNIT * 3 // 2)
                ),
                metadata=auth,
            )
            for r in ok[:10]
        )
    )
    assert all(r.usage_record.over_estimate for r in over)
    spent = 10 * UNIT * 3 // 2

    # The other 40 lapse; a new wave gets exactly the room left by committed spend.
    moved_clock.offset = timedelta(seconds=61)
    ok2, failed2 = await reserve_many(stub, auth, 200, UNIT)
    assert len(ok2) == (50 * UNIT - spent) // UNIT == 35
    assert len(failed2) == 165
    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert got.spent_micros == spent
    assert got.spent_micros + got.reserved_micros <= got.hard_limit_micros
    assert got.reserved_micros == 35 * UNIT

    # A lapsed reservation cannot be committed any more (record the usage instead).
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CommitReservation(
            pb.CommitReservationRequest(
                name=ok[20].name, usage=pb.TokenUsage(model=model, input_tokens=1)
            ),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert info is not None
    assert info.reason == "RESERVATION_EXPIRED"


async def test_sweeper_expires_lapsed_reservations(
    stub: pb_grpc.CostServiceStub, auth: Metadata, moved_clock: MovableClock
) -> None:
    budget = await tenant_budget(stub, auth, hard=10 * UNIT)
    await stub.Reserve(pb.ReserveRequest(amount_micros=UNIT), metadata=auth)
    moved_clock.offset = timedelta(minutes=6)
    for _ in range(50):
        got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
        if got.reserved_micros == 0:
            break
        await asyncio.sleep(0.1)
    assert got.reserved_micros == 0


async def test_a_lapsed_reservation_reads_and_releases_as_expired(
    stub: pb_grpc.CostServiceStub, auth: Metadata, moved_clock: MovableClock
) -> None:
    budget = await tenant_budget(stub, auth, hard=10 * UNIT)
    request = pb.ReserveRequest(
        amount_micros=UNIT, ttl=duration_pb2.Duration(seconds=30), request_id="lapsing"
    )
    r = await stub.Reserve(request, metadata=auth)
    assert r.state == pb.RESERVATION_STATE_ACTIVE
    moved_clock.offset = timedelta(seconds=31)
    # Expired whether or not the sweeper got there first.
    replay = await stub.Reserve(request, metadata=auth)
    assert (replay.name, replay.state) == (r.name, pb.RESERVATION_STATE_EXPIRED)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReleaseReservation(pb.ReleaseReservationRequest(name=r.name), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert info is not None
    assert info.reason == "RESERVATION_EXPIRED"
    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert (got.spent_micros, got.reserved_micros) == (0, 0)


async def test_commit_and_release_are_idempotent_and_guard_terminal_states(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = await micro_per_token_model(stub, admin)
    await tenant_budget(stub, auth, hard=10 * UNIT)
    usage = pb.TokenUsage(model=model, input_tokens=10)
    r = await stub.Reserve(pb.ReserveRequest(amount_micros=UNIT), metadata=auth)
    first = await stub.CommitReservation(
        pb.CommitReservationRequest(name=r.name, usage=usage), metadata=auth
    )
    again = await stub.CommitReservation(
        pb.CommitReservationRequest(name=r.name, usage=usage), metadata=auth
    )
    assert again == first
    assert first.usage_record.reservation == r.name
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReleaseReservation(pb.ReleaseReservationRequest(name=r.name), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    r2 = await stub.Reserve(pb.ReserveRequest(amount_micros=UNIT), metadata=auth)
    released = await stub.ReleaseReservation(
        pb.ReleaseReservationRequest(name=r2.name), metadata=auth
    )
    assert released.state == pb.RESERVATION_STATE_RELEASED
    assert (
        await stub.ReleaseReservation(pb.ReleaseReservationRequest(name=r2.name), metadata=auth)
        == released
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CommitReservation(
            pb.CommitReservationRequest(name=r2.name, usage=usage), metadata=auth
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert info is not None
    assert info.reason == "RESERVATION_RELEASED"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReleaseReservation(
            pb.ReleaseReservationRequest(name="reservations/nope"), metadata=auth
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reserve_is_idempotent_by_request_id(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    budget = await tenant_budget(stub, auth, hard=10 * UNIT)
    request = pb.ReserveRequest(amount_micros=UNIT, request_id="call-1")
    results = await asyncio.gather(*(stub.Reserve(request, metadata=auth) for _ in range(10)))
    assert len({r.name for r in results}) == 1
    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert got.reserved_micros == UNIT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Reserve(
            pb.ReserveRequest(amount_micros=2 * UNIT, request_id="call-1"), metadata=auth
        )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_every_applicable_budget_is_checked_and_held(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    tenant_b = await tenant_budget(stub, auth, hard=100 * UNIT)
    user_b = await tenant_budget(
        stub, auth, hard=3 * UNIT, scope_kind=pb.SCOPE_KIND_USER, scope_id="alice"
    )
    task_b = await tenant_budget(
        stub, auth, hard=2 * UNIT, scope_kind=pb.SCOPE_KIND_TASK, scope_id="tasks/t1"
    )
    other_user = await tenant_budget(
        stub, auth, hard=1, scope_kind=pb.SCOPE_KIND_USER, scope_id="bob"
    )
    in_task = pb.Attribution(task="tasks/t1")
    r = await stub.Reserve(
        pb.ReserveRequest(amount_micros=2 * UNIT, attribution=in_task), metadata=auth
    )
    assert sorted(r.budgets) == sorted([tenant_b.name, user_b.name, task_b.name])
    assert other_user.name not in r.budgets
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Reserve(pb.ReserveRequest(amount_micros=1, attribution=in_task), metadata=auth)
    quota = detail(caught.value, error_details_pb2.QuotaFailure)
    assert quota is not None
    assert quota.violations[0].subject == task_b.name
    # Outside the task, the user budget (3 units, 2 held) is the limit.
    await stub.Reserve(pb.ReserveRequest(amount_micros=UNIT), metadata=auth)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Reserve(pb.ReserveRequest(amount_micros=1), metadata=auth)
    quota = detail(caught.value, error_details_pb2.QuotaFailure)
    assert quota is not None
    assert quota.violations[0].subject == user_b.name


async def test_a_day_budget_rolls_over_at_utc_midnight(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata, moved_clock: MovableClock
) -> None:
    model = await micro_per_token_model(stub, admin)
    budget = await tenant_budget(stub, auth, hard=UNIT, period=pb.PERIOD_DAY)
    r = await stub.Reserve(pb.ReserveRequest(amount_micros=UNIT), metadata=auth)
    await stub.CommitReservation(
        pb.CommitReservationRequest(
            name=r.name, usage=pb.TokenUsage(model=model, input_tokens=UNIT)
        ),
        metadata=auth,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Reserve(pb.ReserveRequest(amount_micros=1), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    before = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert before.spent_micros == UNIT

    moved_clock.offset = timedelta(days=1)
    after = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert after.spent_micros == 0
    assert after.period_start_time.ToSeconds() - before.period_start_time.ToSeconds() == 86400
    await stub.Reserve(pb.ReserveRequest(amount_micros=UNIT), metadata=auth)


async def test_reserve_by_estimate_and_a_free_model(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    await tenant_budget(stub, auth, hard=UNIT)
    paid = await stub.Reserve(
        pb.ReserveRequest(
            estimate=pb.EstimateCostRequest(
                model="gpt-4o-mini", input_tokens=1000, max_output_tokens=500
            )
        ),
        metadata=auth,
    )
    assert paid.amount_micros == 450
    free = await stub.Reserve(
        pb.ReserveRequest(
            estimate=pb.EstimateCostRequest(model="extractive-v1", input_tokens=10**6)
        ),
        metadata=auth,
    )
    assert free.amount_micros == 0
    done = await stub.CommitReservation(
        pb.CommitReservationRequest(
            name=free.name, usage=pb.TokenUsage(model="extractive-v1", input_tokens=5)
        ),
        metadata=auth,
    )
    assert done.usage_record.amount_micros == 0


@pytest.mark.parametrize(
    "request_",
    [
        pb.ReserveRequest(),  # no amount
        pb.ReserveRequest(amount_micros=-1),
        pb.ReserveRequest(amount_micros=1, ttl=duration_pb2.Duration(seconds=100_000)),
        pb.ReserveRequest(amount_micros=1, attribution=pb.Attribution(task="not-a-task")),
        pb.ReserveRequest(amount_micros=1, request_id="spaces are bad"),
    ],
)
async def test_bad_reserve_requests_are_invalid(
    stub: pb_grpc.CostServiceStub, auth: Metadata, request_: pb.ReserveRequest
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Reserve(request_, metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

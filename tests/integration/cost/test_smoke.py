from __future__ import annotations

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from tests.integration.cost.conftest import Metadata


async def test_reserve_commit_roundtrip(stub: pb_grpc.CostServiceStub, auth: Metadata) -> None:
    budget = await stub.CreateBudget(
        pb.CreateBudgetRequest(
            budget=pb.Budget(scope_kind=pb.SCOPE_KIND_TENANT, period=pb.PERIOD_MONTH,
                             hard_limit_micros=1000, alert_thresholds_percent=[50, 100])
        ),
        metadata=auth,
    )
    r = await stub.Reserve(pb.ReserveRequest(amount_micros=600), metadata=auth)
    assert r.state == pb.RESERVATION_STATE_ACTIVE
    assert list(r.budgets) == [budget.name]
    c = await stub.CommitReservation(
        pb.CommitReservationRequest(name=r.name, usage=pb.TokenUsage(model="gpt-4o-mini", input_tokens=1000, output_tokens=100)),
        metadata=auth,
    )
    assert c.state == pb.RESERVATION_STATE_COMMITTED
    assert c.usage_record.amount_micros == 210
    got = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert got.spent_micros == 210
    assert got.reserved_micros == 0

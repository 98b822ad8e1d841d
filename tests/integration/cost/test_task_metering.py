"""The task worker's `Meter` against the real CostService: unpriced models fail
closed (and the worker treats that as permanent), and a call that outlives its
reservation is still charged."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.task.metering import Meter
from services.task.runner import PERMANENT_CODES
from tests.integration.conftest import Metadata
from tests.integration.cost.conftest import MovableClock


def meter_for(stub: pb_grpc.CostServiceStub, auth: Metadata, key: str) -> Meter:
    return Meter(stub, lambda: auth, "alice", "tasks/t1", key)


async def test_an_unpriced_model_fails_closed_and_permanently(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    meter = meter_for(stub, auth, "unpriced")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await meter.reserve("no-such-model", input_tokens=100, max_output_tokens=100)

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no-such-model" in (caught.value.details() or "")
    assert caught.value.code() in PERMANENT_CODES


async def test_a_commit_after_the_reservation_expired_still_charges_once(
    stub: pb_grpc.CostServiceStub,
    auth: Metadata,
    moved_clock: MovableClock,
) -> None:
    meter = meter_for(stub, auth, "late")
    hold = await meter.reserve("gpt-4o-mini", input_tokens=1_000, max_output_tokens=500)
    assert hold.amount_micros > 0

    moved_clock.offset = timedelta(hours=1)  # past the 5-minute default ttl
    charged = await meter.commit(hold, "gpt-4o-mini", 1_000, 200, estimated=False)
    again = await meter.commit(hold, "gpt-4o-mini", 1_000, 200, estimated=False)

    assert charged == again > 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # the hold itself lapsed
        await stub.ReleaseReservation(pb.ReleaseReservationRequest(name=hold.name), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    usage = await stub.ListUsage(pb.ListUsageRequest(page_size=50), metadata=auth)
    late = [r for r in usage.usage_records if r.attribution.task == "tasks/t1"]
    assert [r.amount_micros for r in late] == [charged]

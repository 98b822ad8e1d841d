"""WatchSpend sends a heartbeat whenever the feed has been quiet: carrying the
position it has delivered up to (so resuming from it loses nothing), never a
sequence of its own, and never in place of an event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.cost.service import make_spec
from services.cost.servicer import CostOptions
from services.platform.config import Settings
from tests.conftest import running
from tests.integration.conftest import Metadata
from tests.integration.cost.helpers import micro_per_token_model

HEARTBEAT_SECONDS = 0.1


@pytest.fixture(scope="module")
async def beating(settings: Settings) -> AsyncIterator[pb_grpc.CostServiceStub]:
    """A CostService whose quiet feeds beat every HEARTBEAT_SECONDS."""
    spec = make_spec(options=CostOptions(watch_heartbeat_seconds=HEARTBEAT_SECONDS))
    async with running(spec, settings) as (_, channel):
        yield pb_grpc.CostServiceStub(channel)


async def record(stub: pb_grpc.CostServiceStub, auth: Metadata, model: str, key: str) -> None:
    await stub.RecordUsage(
        pb.RecordUsageRequest(
            usage=pb.TokenUsage(model=model, input_tokens=10), idempotency_key=key
        ),
        metadata=auth,
    )


async def take(call: grpc.aio.UnaryStreamCall, count: int) -> list[pb.SpendEvent]:
    return [await asyncio.wait_for(call.read(), 5.0) for _ in range(count)]


async def test_a_quiet_feed_beats_with_the_head_it_delivered(
    beating: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    call = beating.WatchSpend(pb.WatchSpendRequest(), metadata=auth)
    before = await take(call, 2)
    assert [e.WhichOneof("kind") for e in before] == ["heartbeat", "heartbeat"]
    assert all(e.sequence == 0 and e.heartbeat.head_sequence == 0 for e in before)
    assert all(e.heartbeat.time.seconds > 0 and e.time == e.heartbeat.time for e in before)

    model = await micro_per_token_model(beating, admin)
    await record(beating, auth, model, "k-1")
    await record(beating, auth, model, "k-2")
    events = [e for e in await take(call, 6) if not e.HasField("heartbeat")]
    call.cancel()
    assert [(e.sequence, e.WhichOneof("kind")) for e in events][:2] == [(1, "usage"), (2, "usage")]

    # Resuming from a heartbeat's head repeats nothing and loses nothing.
    resumed = beating.WatchSpend(pb.WatchSpendRequest(after_sequence=2), metadata=auth)
    (beat,) = await take(resumed, 1)
    assert beat.heartbeat.head_sequence == 2
    await record(beating, auth, model, "k-3")
    (nxt,) = await take(resumed, 1)
    while nxt.HasField("heartbeat"):
        (nxt,) = await take(resumed, 1)
    resumed.cancel()
    assert (nxt.sequence, nxt.usage.idempotency_key) == (3, "k-3")

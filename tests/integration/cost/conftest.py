"""One CostService (real PostgreSQL, real gRPC) for the cost tests, with a clock
the tests can move (period rollover, expiry) and a fast sweeper."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest

from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.cost.group_commit import GroupCommit
from services.cost.periods import utc_now
from services.cost.service import make_spec
from services.cost.servicer import CostOptions, CostServicer
from services.platform.config import Settings
from services.platform.server import ServiceServer
from tests.conftest import ALL_SCOPES, running
from tests.integration.conftest import Metadata

ADMIN_SCOPES = ALL_SCOPES + " cost:admin"


class MovableClock:
    """Real time plus an offset the tests set (never sleep to change periods)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utc_now() + self.offset


@pytest.fixture(scope="session")
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def moved_clock(clock: MovableClock) -> Iterator[MovableClock]:
    """The service clock, put back to real time after the test."""
    yield clock
    clock.offset = timedelta()


@pytest.fixture(scope="session")
async def cost_server(
    settings: Settings, clock: MovableClock
) -> AsyncIterator[tuple[ServiceServer, grpc.aio.Channel]]:
    spec = make_spec(
        clock=clock,
        sweep_interval_seconds=0.2,
        tier_ttl_seconds=0.5,
        options=CostOptions(export_page_rows=7, watch_recheck_seconds=5.0),
    )
    async with running(spec, settings) as (server, channel):
        yield server, channel


@pytest.fixture(scope="session")
def stub(cost_server: tuple[ServiceServer, grpc.aio.Channel]) -> pb_grpc.CostServiceStub:
    return pb_grpc.CostServiceStub(cost_server[1])


@pytest.fixture(scope="session")
def group_commit(cost_server: tuple[ServiceServer, grpc.aio.Channel]) -> GroupCommit[Any, Any]:
    """The served CostService's group commit (its counters say how calls were batched)."""
    servicer = cost_server[0]._parts.servicer
    assert isinstance(servicer, CostServicer)
    return servicer.store.group_commit


@pytest.fixture
def admin(as_tenant: Callable[..., Metadata]) -> Metadata:
    return as_tenant("ops", user="operator", scopes=ADMIN_SCOPES)


def new_model() -> str:
    """A model id no other test uses (price tests add versions to it)."""
    return "m-" + uuid.uuid4().hex[:10]

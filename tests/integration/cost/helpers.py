"""Small helpers for the cost tests: prices for throwaway models, budgets, and
reading `google.rpc.Status` details off a failed call."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import grpc
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from grpc_status import rpc_status

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from tests.integration.conftest import Metadata
from tests.integration.cost.conftest import new_model

M = TypeVar("M", bound=Message)


def stamp(at: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(at)
    return out


def detail(exc: grpc.aio.AioRpcError, kind: type[M]) -> M | None:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is None:
        return None
    for item in status.details:
        found = kind()
        if item.Unpack(found):
            return found
    return None


async def micro_per_token_model(
    stub: pb_grpc.CostServiceStub, admin: Metadata, effective_from: datetime | None = None
) -> str:
    """A fresh model priced at exactly 1 micro per input token and 2 per output token."""
    model = new_model()
    price = pb.Price(model=model, input_micros_per_mtok=1_000_000, output_micros_per_mtok=2_000_000)
    if effective_from is not None:
        price.effective_from.CopyFrom(stamp(effective_from))
    await stub.UpsertPrice(pb.UpsertPriceRequest(price=price), metadata=admin)
    return model


async def tenant_budget(
    stub: pb_grpc.CostServiceStub,
    auth: Metadata,
    hard: int,
    period: int = pb.PERIOD_MONTH,
    **fields: object,
) -> pb.Budget:
    budget = pb.Budget(
        scope_kind=fields.pop("scope_kind", pb.SCOPE_KIND_TENANT),  # type: ignore[arg-type]
        period=period,
        hard_limit_micros=hard,
        **fields,  # type: ignore[arg-type]
    )
    return await stub.CreateBudget(pb.CreateBudgetRequest(budget=budget), metadata=auth)

"""The price book: defaults, versions by effective time, admin-only writes,
unknown models failing closed."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.rpc import error_details_pb2

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.cost.periods import utc_now
from tests.integration.conftest import Metadata
from tests.integration.cost.conftest import new_model
from tests.integration.cost.helpers import detail, stamp


async def test_default_price_book_knows_local_models_at_zero(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    prices = (await stub.ListPrices(pb.ListPricesRequest(page_size=1000), metadata=auth)).prices
    by_model = {p.model: p for p in prices}
    for local in ("all-minilm-l6-v2", "extractive-v1"):
        assert by_model[local].input_micros_per_mtok == 0
        assert by_model[local].output_micros_per_mtok == 0
    assert by_model["gpt-4o-mini"].input_micros_per_mtok == 150_000
    price = await stub.GetPrice(pb.GetPriceRequest(name="prices/all-minilm-l6-v2"), metadata=auth)
    assert price.version >= 1


async def test_usage_is_rated_with_the_price_in_effect_at_its_time(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    model = new_model()
    t0 = utc_now() - timedelta(days=10)
    for days, price in ((0, 1_000_000), (5, 3_000_000)):
        await stub.UpsertPrice(
            pb.UpsertPriceRequest(
                price=pb.Price(
                    model=model,
                    input_micros_per_mtok=price,
                    effective_from=stamp(t0 + timedelta(days=days)),
                )
            ),
            metadata=admin,
        )

    async def record(key: str, days: float) -> pb.UsageRecord:
        return await stub.RecordUsage(
            pb.RecordUsageRequest(
                usage=pb.TokenUsage(model=model, input_tokens=1000),
                idempotency_key=key,
                usage_time=stamp(t0 + timedelta(days=days)),
            ),
            metadata=auth,
        )

    early, late = await record("early", 1), await record("late", 6)
    assert (early.price_version, early.amount_micros) == (1, 1000)
    assert (late.price_version, late.amount_micros) == (2, 3000)
    at = await stub.GetPrice(
        pb.GetPriceRequest(name=f"prices/{model}", at=stamp(t0 + timedelta(days=2))), metadata=auth
    )
    assert at.version == 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await record("before-any-price", -1)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_history_lists_every_version_in_pages(
    stub: pb_grpc.CostServiceStub, auth: Metadata, admin: Metadata
) -> None:
    responses = []
    token = ""
    while True:
        page = await stub.ListPrices(
            pb.ListPricesRequest(include_history=True, page_size=3, page_token=token), metadata=auth
        )
        responses.extend(page.prices)
        token = page.next_page_token
        if not token:
            break
    keys = [(p.model, p.version) for p in responses]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))


async def test_only_admins_write_prices(stub: pb_grpc.CostServiceStub, auth: Metadata) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpsertPrice(
            pb.UpsertPriceRequest(price=pb.Price(model=new_model(), input_micros_per_mtok=1)),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_version_is_immutable_but_reupserting_it_is_idempotent(
    stub: pb_grpc.CostServiceStub, admin: Metadata
) -> None:
    model = new_model()
    price = pb.Price(model=model, input_micros_per_mtok=5, effective_from=stamp(utc_now()))
    first = await stub.UpsertPrice(pb.UpsertPriceRequest(price=price), metadata=admin)
    again = await stub.UpsertPrice(pb.UpsertPriceRequest(price=price), metadata=admin)
    assert again.version == first.version == 1
    price.input_micros_per_mtok = 6
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpsertPrice(pb.UpsertPriceRequest(price=price), metadata=admin)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    info = detail(caught.value, error_details_pb2.ErrorInfo)
    assert info is not None
    assert info.reason == "PRICE_VERSION_EXISTS"


async def test_unknown_models_fail_closed(stub: pb_grpc.CostServiceStub, auth: Metadata) -> None:
    calls = [
        stub.EstimateCost(
            pb.EstimateCostRequest(model="no-such-model", input_tokens=1), metadata=auth
        ),
        stub.RecordUsage(
            pb.RecordUsageRequest(
                usage=pb.TokenUsage(model="no-such-model", input_tokens=1), idempotency_key="k1"
            ),
            metadata=auth,
        ),
        stub.Reserve(
            pb.ReserveRequest(
                estimate=pb.EstimateCostRequest(model="no-such-model", input_tokens=1)
            ),
            metadata=auth,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = detail(caught.value, error_details_pb2.ErrorInfo)
        assert info is not None
        assert info.reason == "UNKNOWN_MODEL"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetPrice(pb.GetPriceRequest(name="prices/no-such-model"), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_estimate_prices_input_plus_max_output(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    estimate = await stub.EstimateCost(
        pb.EstimateCostRequest(model="gpt-4o-mini", input_tokens=1000, max_output_tokens=500),
        metadata=auth,
    )
    assert estimate.amount_micros == 150 + 300
    assert estimate.currency_code == "USD"

"""Overload: a tenant over its rate or its in-flight cap is shed at once with
RESOURCE_EXHAUSTED (+ RetryInfo, QuotaFailure) — 429 with Retry-After through the
gateway — while another tenant's calls keep succeeding. Real DocumentService with
deliberately low limits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.app import create_app
from gateway.config import GatewayConfig
from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.document.service import SPEC
from services.platform.config import Settings
from tests.conftest import Mint, bearer, running

DOCUMENTS = "protomesh.document.v1.DocumentService"


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[tuple[str, pb_grpc.DocumentServiceStub]]:
    tight = replace(
        settings,
        tenant_rate_limits="read=120,write=600,stream=600",
        tenant_burst_seconds=5.0,  # read: 10 calls at once, then 2 per second
        tenant_max_in_flight=3,
    )
    async with running(SPEC, tight) as (server, channel):
        yield f"127.0.0.1:{server.port}", pb_grpc.DocumentServiceStub(channel)


def details(exc: grpc.aio.AioRpcError) -> tuple[float, list[str]]:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None
    delay, subjects = -1.0, []
    for detail in status.details:
        retry, quota = error_details_pb2.RetryInfo(), error_details_pb2.QuotaFailure()
        if detail.Unpack(retry):
            delay = retry.retry_delay.ToTimedelta().total_seconds()
        elif detail.Unpack(quota):
            subjects += [v.subject for v in quota.violations]
    return delay, subjects


async def outcome(call: asyncio.Future[object]) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return "OK"


async def test_a_noisy_tenant_is_shed_while_a_quiet_one_is_served(
    limited: tuple[str, pb_grpc.DocumentServiceStub], mint: Mint
) -> None:
    _, stub = limited
    noisy, quiet = (
        bearer(mint("noisy-" + uuid.uuid4().hex[:6])),
        bearer(mint("quiet-" + uuid.uuid4().hex[:6])),
    )
    missing = pb.GetDocumentRequest(name="documents/00000000000000000000000000000000")

    flood = [asyncio.ensure_future(stub.GetDocument(missing, metadata=noisy)) for _ in range(40)]
    calm_codes = [await outcome(stub.GetDocument(missing, metadata=quiet)) for _ in range(5)]
    flood_codes = await asyncio.gather(*map(outcome, flood))

    assert flood_codes.count("RESOURCE_EXHAUSTED") >= 25, flood_codes
    assert set(flood_codes) <= {"NOT_FOUND", "RESOURCE_EXHAUSTED"}
    assert calm_codes == ["NOT_FOUND"] * 5  # served (the document does not exist)
    with pytest.raises(grpc.aio.AioRpcError) as shed:
        await stub.GetDocument(missing, metadata=noisy)
    assert shed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    delay, subjects = details(shed.value)
    assert 0 < delay <= 0.5
    assert subjects
    assert subjects[0].startswith("tenants/noisy-")


async def test_calls_in_flight_beyond_the_cap_are_refused_not_queued(
    limited: tuple[str, pb_grpc.DocumentServiceStub], mint: Mint
) -> None:
    _, stub = limited
    tenant = bearer(mint("busy-" + uuid.uuid4().hex[:6]))
    other = bearer(mint("idle-" + uuid.uuid4().hex[:6]))
    gates = [asyncio.Event() for _ in range(3)]

    async def held_open(gate: asyncio.Event) -> AsyncIterator[pb.BatchCreateDocumentsRequest]:
        await gate.wait()
        return
        yield

    streams = [stub.BatchCreateDocuments(held_open(g), metadata=tenant) for g in gates]
    # A client-streaming call gets its response headers once admitted: all three hold a slot.
    await asyncio.wait_for(asyncio.gather(*(s.initial_metadata() for s in streams)), 10)
    missing = pb.GetDocumentRequest(name="documents/00000000000000000000000000000000")

    refused = await outcome(stub.GetDocument(missing, metadata=tenant))
    served = await outcome(stub.GetDocument(missing, metadata=other))
    for gate in gates:
        gate.set()
    replies = await asyncio.gather(*streams)
    after = await outcome(stub.GetDocument(missing, metadata=tenant))

    assert refused == "RESOURCE_EXHAUSTED"
    assert served == "NOT_FOUND"
    assert [r.created_count for r in replies] == [0, 0, 0]
    assert after == "NOT_FOUND"  # the slots were released


async def test_the_gateway_answers_429_with_retry_after(
    limited: tuple[str, pb_grpc.DocumentServiceStub], settings: Settings, mint: Mint
) -> None:
    address, _ = limited
    app = create_app(GatewayConfig.from_settings(settings), backends={DOCUMENTS: address})
    token = {"Authorization": f"Bearer {mint('rest-' + uuid.uuid4().hex[:6])}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        statuses = []
        for _ in range(15):
            response = await client.get(
                "/v1/documents/00000000000000000000000000000000", headers=token
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                break

    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {404}
    assert float(response.headers["retry-after"]) >= 0
    error = response.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert any(d["@type"].endswith("QuotaFailure") for d in error["details"])

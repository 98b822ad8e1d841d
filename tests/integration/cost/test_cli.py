"""`protomesh cost report|budgets|prices` against a running CostService."""

from __future__ import annotations

import io

import grpc
from rich.console import Console

from cli import cost as cli
from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.platform.channels import Endpoint
from services.platform.server import ServiceServer
from tests.conftest import Mint
from tests.integration.conftest import Metadata
from tests.integration.cost.helpers import micro_per_token_model, tenant_budget


async def test_cli_renders_report_budgets_and_prices_over_grpc(
    cost_server: tuple[ServiceServer, grpc.aio.Channel],
    stub: pb_grpc.CostServiceStub,
    mint: Mint,
    tenant: str,
    auth: Metadata,
    admin: Metadata,
) -> None:
    target = Endpoint(f"127.0.0.1:{cost_server[0].port}")
    token = mint(tenant)
    model = await micro_per_token_model(stub, admin)
    await tenant_budget(stub, auth, hard=5_000_000, display_name="monthly cap")
    await stub.RecordUsage(
        pb.RecordUsageRequest(
            usage=pb.TokenUsage(model=model, input_tokens=1_234_567), idempotency_key="cli-1"
        ),
        metadata=auth,
    )
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)

    report = await cli.report(target, token, console, by="model")
    assert report.total.amount_micros == 1_234_567
    budgets = await cli.budgets(target, token, console)
    assert [b.display_name for b in budgets] == ["monthly cap"]
    prices = await cli.prices(target, token, console)
    assert "extractive-v1" in {p.model for p in prices}

    text = out.getvalue()
    assert "1.234567 USD" in text  # the report's exact cost
    assert "monthly cap" in text
    assert "5.000000" in text
    assert "gpt-4o-mini" in text

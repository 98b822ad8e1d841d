from __future__ import annotations

import pytest
from rich.console import Console

from cli.cost import build_report_request, render_budgets, render_prices, render_report
from protomesh.cost.v1 import cost_service_pb2 as pb


def test_report_request_parses_group_and_dates() -> None:
    request = build_report_request("day", "2025-01-01", "2025-02-01T00:00:00+00:00")
    assert request.group_by == pb.GROUP_BY_DAY
    assert request.start_time.ToJsonString() == "2025-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="--by"):
        build_report_request("planet")
    with pytest.raises(ValueError, match="ISO 8601"):
        build_report_request("model", "yesterday")


def test_tables_render_exact_money() -> None:
    console = Console(record=True, width=160)
    report = pb.SpendReport(
        rows=[pb.SpendReportRow(key="gpt-4o-mini", record_count=2, amount_micros=1_500_001)],
        total=pb.SpendReportRow(key="total", record_count=2, amount_micros=1_500_001),
        currency_code="USD",
    )
    render_report(report, "model", console)
    render_budgets(
        [
            pb.Budget(
                name="budgets/b", scope_kind=1, period=2, hard_limit_micros=10, spent_micros=10
            )
        ],
        console,
    )
    render_prices(
        [pb.Price(model="m", version=1, currency_code="USD", input_micros_per_mtok=150_000)],
        console,
    )
    text = console.export_text()
    assert "1.500001 USD" in text
    assert "0.150000 USD" in text
    assert "budgets/b" in text

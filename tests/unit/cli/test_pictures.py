"""What the CLI draws: bars proportional to the data (`cost report --by day`,
`status`), and tables that never cut a resource name, however narrow the terminal."""

from __future__ import annotations

import pytest
from rich.console import Console

from cli.bars import FULL, bar, cells
from cli.cost import daily_rows, render_budgets, render_daily_chart
from cli.search import render as render_search
from cli.status import Component, Status, render
from cli.tasks import render_tasks
from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.task.v1 import task_service_pb2 as task_pb


def test_a_bar_is_its_share_of_the_largest_value_to_an_eighth_of_a_cell() -> None:
    assert bar(40, 40, 20) == FULL * 20
    assert bar(10, 40, 20) == FULL * 5
    assert bar(11, 40, 20) == FULL * 5 + "▌"  # 5.5 cells
    assert cells(bar(11, 40, 20)) == 5.5
    assert bar(1, 10_000, 20) == "▏"  # anything above 0 shows
    assert bar(0, 40, 20) == ""
    assert bar(5, 0, 20) == ""
    assert bar(80, 40, 20) == FULL * 20  # never past the column


def report(amounts: dict[str, int]) -> cost_pb.SpendReport:
    rows = [
        cost_pb.SpendReportRow(key=day, amount_micros=micros, record_count=1)
        for day, micros in amounts.items()
    ]
    found = cost_pb.SpendReport(
        rows=rows,
        total=cost_pb.SpendReportRow(
            key="total", amount_micros=sum(amounts.values()), record_count=len(rows)
        ),
        currency_code="USD",
    )
    found.start_time.FromJsonString("2026-12-01T00:00:00Z")
    found.end_time.FromJsonString("2026-12-05T00:00:00Z")
    return found


def chart_lines(spend: cost_pb.SpendReport, width: int = 100) -> dict[str, str]:
    console = Console(record=True, width=width, color_system=None)
    render_daily_chart(spend, console)
    lines = console.export_text().splitlines()
    return {line.split()[0]: line for line in lines if line[:4] in ("2026", "tota")}


def test_spend_per_day_is_drawn_as_proportional_bars_with_exact_amounts() -> None:
    spend = report({"2026-12-01": 4_000_000, "2026-12-02": 2_000_000, "2026-12-04": 1_000_000})

    lines = chart_lines(spend)

    drawn = {
        day: cells("".join(c for c in line if c in FULL + "▏▎▍▌▋▊▉")) for day, line in lines.items()
    }
    assert drawn["2026-12-01"] == 2 * drawn["2026-12-02"] == 4 * drawn["2026-12-04"]
    assert drawn["2026-12-01"] >= 40  # the largest day fills the bar column
    assert drawn["2026-12-03"] == 0  # a day without spend is shown, empty
    assert "4.000000 USD" in lines["2026-12-01"]
    assert "1.000000 USD" in lines["2026-12-04"]
    assert "0.000000 USD" in lines["2026-12-03"]
    assert "7.000000 USD" in lines["total"]


def test_the_bars_fit_the_terminal() -> None:
    spend = report({"2026-12-01": 3_000_000, "2026-12-02": 1_000_000})

    for width in (60, 100, 160):
        lines = chart_lines(spend, width)
        assert all(len(line) <= width for line in lines.values()), lines
        assert "3.000000 USD" in lines["2026-12-01"]


def test_daily_rows_fill_the_gaps_in_date_order() -> None:
    rows = daily_rows(report({"2026-12-03": 5, "2026-12-01": 7}))

    assert [(r.key, r.amount_micros) for r in rows] == [
        ("2026-12-01", 7),
        ("2026-12-02", 0),
        ("2026-12-03", 5),
    ]


def status_text(status: Status, width: int = 100) -> str:
    console = Console(record=True, width=width, color_system=None)
    render(status, console)
    return console.export_text()


def bar_cells(text: str, label: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(label))
    return cells("".join(c for c in line if c in FULL + "▏▎▍▌▋▊▉"))


def test_status_shows_index_lag_and_queue_depth_as_small_bars() -> None:
    status = Status(
        components=[Component("document", "127.0.0.1:1", True, "0.1.0")],
        index_lag=30,
        index_pending_embeddings=120,
        queue_depth={"submitted": 10, "working": 4, "input_required": 0},
        spend_today="0.000000 USD",
    )

    text = status_text(status)

    assert bar_cells(text, "embeddings pending") == 20  # the larger index figure: full
    assert bar_cells(text, "index lag") == 5  # 30 / 120 of 20 cells
    assert bar_cells(text, "queue submitted") == 20
    assert bar_cells(text, "queue working") == 8
    assert bar_cells(text, "queue input_required") == 0
    assert "30" in next(line for line in text.splitlines() if line.startswith("index lag"))


def test_status_without_figures_draws_no_bars() -> None:
    text = status_text(Status(components=[Component("search", "127.0.0.1:1", False)]))

    assert bar_cells(text, "index lag") == 0
    assert "task queue" in text


@pytest.mark.parametrize("width", [80, 120])
def test_tables_never_cut_resource_names(width: int) -> None:
    name = "tasks/fc75b7ee-0c7a-4b8e-9d3c-6a1f2e4d5b6c"
    task = task_pb.Task(
        name=name,
        type="rag.answer",
        status=task_pb.TaskStatus(state=task_pb.TASK_STATE_FAILED, message="x " * 60),
    )
    chunk = "documents/3f1c9a4e-2b7d-4e8f-a6c5-9d0b1e2f3a4b/chunks/12"
    response = search_pb.SearchResponse(
        results=[search_pb.SearchResult(chunk_id=chunk, title="A title", snippet="s " * 80)]
    )
    budget = cost_pb.Budget(name="budgets/8e7d6c5b-4a39-4281-9f0e-d1c2b3a4f5e6", scope_kind=1)
    console = Console(record=True, width=width, color_system=None)

    render_tasks([task], console, next_page_token="")
    render_search(response, console)
    render_budgets([budget], console)

    text = console.export_text()
    assert name in text
    assert chunk in text
    assert budget.name in text

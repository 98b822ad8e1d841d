"""`protomesh cost report|budgets|prices`: CostService from the terminal as Rich
tables (and `--by day` as a bar chart of spend per day), or as JSON. The typer
wiring lives in main.py; these coroutines take a channel `Endpoint` and a bearer
token, like the other CLI modules. Money is shown exactly (micro-units →
`0.123456 USD`), never through floats; bars are the only approximation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from google.protobuf import timestamp_pb2
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.bars import bar
from cli.output import items, message_dict, print_json
from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.cost.money import format_micros
from services.platform.channels import Endpoint

GROUPS = {
    "model": pb.GROUP_BY_MODEL,
    "user": pb.GROUP_BY_USER,
    "api-key": pb.GROUP_BY_API_KEY,
    "task": pb.GROUP_BY_TASK,
    "day": pb.GROUP_BY_DAY,
}
Metadata = tuple[tuple[str, str], ...]


def _auth(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def parse_time(value: str) -> timestamp_pb2.Timestamp:
    """`2025-01-31` or an ISO 8601 time (UTC when no offset) → Timestamp."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a date or ISO 8601 time: {value!r}") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


def build_report_request(
    by: str = "model", start: str | None = None, end: str | None = None
) -> pb.GetSpendReportRequest:
    if by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}")
    request = pb.GetSpendReportRequest(group_by=GROUPS[by])  # type: ignore[arg-type]
    if start:
        request.start_time.CopyFrom(parse_time(start))
    if end:
        request.end_time.CopyFrom(parse_time(end))
    return request


def render_report(report: pb.SpendReport, by: str, console: Console) -> Table:
    start = report.start_time.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M")
    end = report.end_time.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M")
    table = Table(title=f"spend by {by} · {start} → {end} UTC")
    table.add_column(by, no_wrap=True, min_width=max((len(r.key) for r in report.rows), default=1))
    for column in ("records", "input", "output", "cached in", "cache write"):
        table.add_column(column, justify="right")
    table.add_column("cost", justify="right")
    for row in [*report.rows, report.total]:
        table.add_row(
            row.key or "-",
            f"{row.record_count:,}",
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            f"{row.cached_input_tokens:,}",
            f"{row.cache_write_tokens:,}",
            format_micros(row.amount_micros, report.currency_code),
            style="bold" if row is report.total else None,
            end_section=row is (report.rows[-1] if report.rows else None),
        )
    console.print(table)
    return table


def daily_rows(report: pb.SpendReport) -> list[pb.SpendReportRow]:
    """The report's rows (grouped by day) in date order, with a zero row for each
    day between the first and the last that had no spend, so the chart's gaps show."""
    by_day = {row.key: row for row in report.rows}
    try:
        days = sorted(date.fromisoformat(key) for key in by_day)
    except ValueError:  # not grouped by day after all: the rows as they are
        return list(report.rows)
    if not days:
        return []
    rows = []
    day = days[0]
    while day <= days[-1]:
        key = day.isoformat()
        rows.append(by_day.get(key) or pb.SpendReportRow(key=key))
        day += timedelta(days=1)
    return rows


def render_daily_chart(report: pb.SpendReport, console: Console) -> Table:
    """Spend per day as horizontal bars proportional to the day's amount (the
    largest day fills the bar column), each with its exact amount and record count."""
    start = report.start_time.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M")
    end = report.end_time.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M")
    rows = daily_rows(report)
    amounts = [format_micros(row.amount_micros, report.currency_code) for row in rows]
    total = format_micros(report.total.amount_micros, report.currency_code)
    amount_width = max([len(total), *(len(a) for a in amounts)])
    records_width = max(len("records"), len(f"{report.total.record_count:,}"))
    # day (10) + amount + records + the padding rich puts between four columns
    bar_width = max(10, console.width - 10 - amount_width - records_width - 8)
    table = Table(
        title=f"spend per day · {start} → {end} UTC",
        box=None,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("day", no_wrap=True)
    table.add_column("spend", no_wrap=True, width=bar_width, overflow="crop")
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("records", justify="right", no_wrap=True)
    largest = max((row.amount_micros for row in rows), default=0)
    for row, amount in zip(rows, amounts, strict=True):
        drawn = bar(row.amount_micros, largest, bar_width)
        table.add_row(row.key, Text(drawn, style="cyan"), amount, f"{row.record_count:,}")
    table.add_row("total", "", total, f"{report.total.record_count:,}", style="bold")
    if not rows:
        console.print(f"no spend between {start} and {end} UTC")
    console.print(table)
    return table


def render_budgets(budgets: list[pb.Budget], console: Console) -> Table:
    table = Table(title=f"{len(budgets)} budgets")
    table.add_column("name", no_wrap=True, min_width=max((len(b.name) for b in budgets), default=4))
    for column in (
        "display name",
        "scope",
        "period",
        "spent",
        "reserved",
        "hard limit",
        "soft limit",
        "alerts at",
    ):
        table.add_column(
            column, justify="right" if column[0] in "srh" and column != "scope" else "left"
        )
    for b in budgets:
        scope = pb.ScopeKind.Name(b.scope_kind).removeprefix("SCOPE_KIND_").lower()
        used = b.spent_micros + b.reserved_micros
        over = b.hard_limit_micros and used >= b.hard_limit_micros
        table.add_row(
            b.name,
            b.display_name,
            f"{scope} {b.scope_id}".strip(),
            pb.Period.Name(b.period).removeprefix("PERIOD_").lower(),
            format_micros(b.spent_micros),
            format_micros(b.reserved_micros),
            format_micros(b.hard_limit_micros) if b.hard_limit_micros else "-",
            format_micros(b.soft_limit_micros) if b.soft_limit_micros else "-",
            ", ".join(f"{t}%" for t in b.alert_thresholds_percent) or "-",
            style="red" if over else None,
        )
    console.print(table)
    return table


def render_prices(prices: list[pb.Price], console: Console, history: bool = False) -> Table:
    table = Table(title="price book (per 1M tokens)" + (" · all versions" if history else ""))
    table.add_column("model")
    table.add_column("v", justify="right")
    for column in ("input", "output", "cached in", "cache write"):
        table.add_column(column, justify="right")
    table.add_column("effective from")
    for p in prices:
        table.add_row(
            p.model,
            str(p.version),
            format_micros(p.input_micros_per_mtok, p.currency_code),
            format_micros(p.output_micros_per_mtok, p.currency_code),
            format_micros(p.cached_input_micros_per_mtok, p.currency_code),
            format_micros(p.cache_write_micros_per_mtok, p.currency_code),
            p.effective_from.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
    return table


async def report(
    target: Endpoint,
    token: str,
    console: Console,
    by: str = "model",
    start: str | None = None,
    end: str | None = None,
    as_json: bool = False,
) -> pb.SpendReport:
    """`protomesh cost report [--by model|user|api-key|task|day] [--from] [--to]`:
    a table, a bar chart per day for `--by day`, or the SpendReport as JSON."""
    request = build_report_request(by, start, end)
    async with target.open() as channel:
        result: pb.SpendReport = await pb_grpc.CostServiceStub(channel).GetSpendReport(
            request, metadata=_auth(token), timeout=30
        )
    if as_json:
        print_json(message_dict(result))
    elif by == "day":
        render_daily_chart(result, console)
    else:
        render_report(result, by, console)
    return result


async def budgets(
    target: Endpoint, token: str, console: Console, as_json: bool = False
) -> list[pb.Budget]:
    """`protomesh cost budgets`: every budget of the caller's tenant with its spend."""
    found: list[pb.Budget] = []
    async with target.open() as channel:
        stub = pb_grpc.CostServiceStub(channel)
        page_token = ""
        while True:
            page = await stub.ListBudgets(
                pb.ListBudgetsRequest(page_size=1000, page_token=page_token),
                metadata=_auth(token),
                timeout=10,
            )
            found.extend(page.budgets)
            page_token = page.next_page_token
            if not page_token:
                break
    if as_json:
        print_json(items(found))
    else:
        render_budgets(found, console)
    return found


async def prices(
    target: Endpoint, token: str, console: Console, history: bool = False, as_json: bool = False
) -> list[pb.Price]:
    """`protomesh cost prices [--history]`: the price book."""
    found: list[pb.Price] = []
    async with target.open() as channel:
        stub = pb_grpc.CostServiceStub(channel)
        page_token = ""
        while True:
            page = await stub.ListPrices(
                pb.ListPricesRequest(
                    include_history=history, page_size=1000, page_token=page_token
                ),
                metadata=_auth(token),
                timeout=10,
            )
            found.extend(page.prices)
            page_token = page.next_page_token
            if not page_token:
                break
    if as_json:
        print_json(items(found))
    else:
        render_prices(found, console, history)
    return found

"""`protomesh cost report|budgets|prices`: CostService from the terminal as Rich
tables. The typer wiring lives in main.py; these coroutines take a channel
`Endpoint` and a bearer token, like the other CLI modules. Money is shown exactly
(micro-units → `0.123456 USD`), never through floats."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from rich.console import Console
from rich.table import Table

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
    table.add_column(by)
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


def render_budgets(budgets: list[pb.Budget], console: Console) -> Table:
    table = Table(title=f"{len(budgets)} budgets")
    for column in (
        "budget",
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
            b.display_name or b.name,
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
) -> pb.SpendReport:
    """`protomesh cost report [--by model|user|api-key|task|day] [--from] [--to]`."""
    request = build_report_request(by, start, end)
    async with target.open() as channel:
        result: pb.SpendReport = await pb_grpc.CostServiceStub(channel).GetSpendReport(
            request, metadata=_auth(token), timeout=30
        )
    render_report(result, by, console)
    return result


async def budgets(target: Endpoint, token: str, console: Console) -> list[pb.Budget]:
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
    render_budgets(found, console)
    return found


async def prices(
    target: Endpoint, token: str, console: Console, history: bool = False
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
    render_prices(found, console, history)
    return found

"""`protomesh status`: is everything up, which version runs, how far behind the
indexer is, how deep the task queue is, and what the caller's tenant spent today.

Health comes from each service's gRPC health check and the gateway's `/readyz`;
versions and queue depth from the processes' Prometheus endpoints; index lag and
spend from the services' own RPCs with the caller's token (so they are the
tenant's view)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.bars import bar
from cli.errors import ExitCode, Failure
from cli.launcher import SERVICES, UP_METRICS_PORT_BASE, grpc_serving, replica_name
from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from services.cost.money import format_micros
from services.platform.channels import Dialer, endpoint
from services.platform.config import Settings, reachable
from services.platform.tls import https_verification

TIMEOUT_SECONDS = 2.0
BAR_WIDTH = 20
REFUSALS = ("UNAUTHENTICATED", "PERMISSION_DENIED")


@dataclass
class Component:
    name: str
    endpoint: str
    healthy: bool
    version: str = ""


@dataclass
class Status:
    components: list[Component] = field(default_factory=list)
    index_lag: int | None = None
    index_pending_embeddings: int | None = None
    queue_depth: dict[str, int] = field(default_factory=dict)
    spend_today: str = ""
    problems: list[str] = field(default_factory=list)
    # The caller's token was refused (UNAUTHENTICATED / PERMISSION_DENIED) by a service.
    refused: bool = False

    @property
    def healthy(self) -> bool:
        return all(c.healthy for c in self.components)

    def failure(self) -> Failure | None:
        """How `protomesh status` ends when not everything is well: 3 when no
        component answers, 1 when some are down, 4 when the token was refused."""
        down = [c.name for c in self.components if not c.healthy]
        if down and len(down) == len(self.components):
            return Failure(ExitCode.UNREACHABLE, "nothing answers: every component is down")
        if down:
            return Failure(ExitCode.FAILED, "not serving: " + ", ".join(down))
        if self.refused:
            refusals = [p for p in self.problems if any(r in p for r in REFUSALS)]
            return Failure(ExitCode.REFUSED, "token refused: " + "; ".join(refusals))
        return None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse_samples(text: str) -> Samples:
    """Prometheus text exposition → (labels, value) pairs by sample name."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


async def _scrape(url: str, verify: ssl.SSLContext | bool = True) -> Samples | None:
    """The samples of a `/metrics` endpoint (None when unreachable)."""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, verify=verify) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return None
    return parse_samples(response.text) if response.status_code == 200 else None


def _metrics_url(settings: Settings, component: str, replica: int = 0) -> str:
    port = settings.metrics_port_of(component, replica)
    return f"http://{reachable(settings.host)}:{port}/metrics"


def build_version(samples: Samples | None) -> str:
    """The version label of `protomesh_build_info` ("" when absent)."""
    for labels, _ in (samples or {}).get("protomesh_build_info", []):
        return labels.get("version", "")
    return ""


def queue_depth_by_state(samples: Samples) -> dict[str, int]:
    """`protomesh_task_queue_depth` summed over task types, by state."""
    depth: dict[str, int] = {}
    for labels, value in samples.get("protomesh_task_queue_depth", []):
        depth[labels["state"]] = depth.get(labels["state"], 0) + int(value)
    return depth


async def _component(settings: Settings, name: str, replica: int) -> Component:
    """One replica of a service (the service itself when it has one)."""
    addresses = settings.replica_addresses(name)
    address = addresses[replica]
    healthy, samples = await asyncio.gather(
        grpc_serving(address, Dialer.from_settings(settings)),
        _scrape(_metrics_url(settings, name, replica)),
    )
    label = replica_name(name, replica, len(addresses))
    return Component(label, address, healthy, build_version(samples))


async def _gateway(settings: Settings) -> Component:
    base = settings.gateway_url
    verify = https_verification(settings.tls)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, verify=verify) as client:
            ready = (await client.get(f"{base}/readyz")).status_code == 200
    except httpx.HTTPError:
        ready = False
    metrics = await _scrape(f"{base}/metrics", verify)
    return Component("gateway", base, ready, build_version(metrics))


async def collect(settings: Settings, token: str) -> Status:
    """Asks every component; never raises for a component that is down."""
    if not settings.metrics_port_base:  # `protomesh up` serves metrics from 9101 by default
        settings = replace(settings, metrics_port_base=UP_METRICS_PORT_BASE)
    metadata = (("authorization", f"Bearer {token}"),)
    components = await asyncio.gather(
        *(
            _component(settings, name, replica)
            for name in SERVICES
            for replica in range(len(settings.replica_addresses(name)))
        ),
        _gateway(settings),
    )
    status = Status(components=list(components))
    worker_metrics = _metrics_url(settings, "task-worker")
    worker = await _scrape(worker_metrics)
    if worker is None:
        status.problems.append(f"task queue depth: no task worker metrics at {worker_metrics}")
    else:
        status.queue_depth = queue_depth_by_state(worker)
    try:
        async with endpoint(settings, "search").open() as channel:
            index = await search_grpc.SearchServiceStub(channel).GetIndexStatus(
                search_pb.GetIndexStatusRequest(), metadata=metadata, timeout=TIMEOUT_SECONDS
            )
        status.index_lag = int(index.lag)
        status.index_pending_embeddings = int(index.pending_embedding_count)
    except grpc.aio.AioRpcError as exc:
        status.problems.append(f"index status: {exc.code().name}: {exc.details()}")
        status.refused = status.refused or exc.code().name in REFUSALS
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    request = cost_pb.GetSpendReportRequest(group_by=cost_pb.GROUP_BY_MODEL)
    request.start_time.FromDatetime(today)
    try:
        async with endpoint(settings, "cost").open() as channel:
            report = await cost_grpc.CostServiceStub(channel).GetSpendReport(
                request, metadata=metadata, timeout=TIMEOUT_SECONDS
            )
        status.spend_today = format_micros(
            report.total.amount_micros, report.currency_code or "USD"
        )
    except grpc.aio.AioRpcError as exc:
        status.problems.append(f"spend: {exc.code().name}: {exc.details()}")
        status.refused = status.refused or exc.code().name in REFUSALS
    return status


def load_table(status: Status, width: int = BAR_WIDTH) -> Table:
    """Index lag, embeddings pending and task queue depth by state as small bars:
    the index rows against the larger of the two, the queue rows against the
    deepest state; each with its number."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("what", no_wrap=True)
    table.add_column("bar", no_wrap=True, width=width, overflow="crop")
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True, style="dim")
    lag, pending = status.index_lag, status.index_pending_embeddings
    index_max = max(lag or 0, pending or 0)
    for label, value, unit in (
        ("index lag", lag, "changes behind"),
        ("embeddings pending", pending, "chunks"),
    ):
        shown = "-" if value is None else str(value)
        drawn = bar(value or 0, index_max, width)
        table.add_row(label, Text(drawn, style="yellow"), shown, unit)
    deepest = max(status.queue_depth.values(), default=0)
    if not status.queue_depth:
        table.add_row("task queue", "", "-", "tasks")
    for state, depth in sorted(status.queue_depth.items()):
        table.add_row(
            f"queue {state}", Text(bar(depth, deepest, width), style="cyan"), str(depth), "tasks"
        )
    return table


def render(status: Status, console: Console) -> None:
    table = Table(title="protomesh status")
    for column in ("component", "endpoint", "health", "version"):
        table.add_column(column, no_wrap=True)
    for c in status.components:
        health = "[green]SERVING[/green]" if c.healthy else "[red]DOWN[/red]"
        table.add_row(c.name, c.endpoint, health, c.version or "-")
    console.print(table)
    console.print(load_table(status))
    console.print(f"spend today (this tenant): {status.spend_today or '-'}")
    for problem in status.problems:
        console.print(f"[yellow]{problem}[/yellow]")

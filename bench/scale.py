"""Throughput with 1 vs 2 replicas per service (`protomesh up --replicas N`), in one run.

For each replica count the whole system starts as processes (bench/common.running_system:
embedded PostgreSQL, every service, task workers, the gateway with as many workers as
replicas), a small corpus is ingested and indexed, and then the same client load —
`--concurrency` callers sharing at most `--calls` calls, cut off after `--seconds` — runs
each operation in turn:

- Search, KEYWORD and HYBRID (each replica embeds a query once, then caches it);
- GetDocument over gRPC, dialled as the services dial each other (services/platform/
  channels: round_robin over the replicas' `ipv4:` target, health-checked);
- GetDocument over REST through the gateway (each gateway worker balances the same way);
- CreateTask of a `noop` task (acceptance: the reply means the task is queued; the task
  workers run them meanwhile).

Per-tenant rate limits are off so they cannot cap one replica count and not the other.
Each replica's `/metrics` (`protomesh_rpc_requests_total`) is scraped before and after
every operation, so the JSON says how the calls split between the replicas. Goal: with 2
replicas no replica gets less than 40 % of any operation's calls. Prints JSON: per
operation calls/s, p50/p99 with 1 and 2 replicas, the ratios 2/1, and the split.

    .venv/bin/python -m bench.scale [--calls 6000] [--seconds 10] [--concurrency 32] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx

from bench.common import RunningSystem, latency_summary, running_system
from bench.goals import phase, print_goals
from bench.load import QUERIES, seed
from cli.status import Samples, parse_samples
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from services.platform.channels import endpoint
from services.platform.config import Settings, reachable

REPLICA_COUNTS = (1, 2)
# Operation → (the component whose replicas serve it, the RPC they count).
OPERATIONS = {
    "search_keyword": ("search", "Search"),
    "search_hybrid": ("search", "Search"),
    "get_document_grpc": ("document", "GetDocument"),
    "get_document_rest": ("document", "GetDocument"),
    "create_task": ("task", "CreateTask"),
}
UNLIMITED = {
    "PROTOMESH_TENANT_RATE_LIMITS": "read=0,write=0,search=0,expensive=0,stream=0,admin=0",
    "PROTOMESH_TENANT_MAX_IN_FLIGHT": "0",
}
SMALLEST_SHARE_MIN = 0.4  # the fault test's 40/60 bound (issue 14)
CALL_TIMEOUT_SECONDS = 10.0
NOTE = (
    "On this machine ({cpus} CPU(s)) the load generator (one Python process), the gateway "
    "workers, every replica and PostgreSQL share the same cores, so a second replica adds "
    "processes, not CPU: a ratio near 1.0 is the honest figure here, and the split shows that "
    "balancing works, not capacity. With a core or more per replica (and PostgreSQL and the "
    "load generator elsewhere), the calls whose cost is Python in the service (GetDocument, "
    "CreateTask acceptance, the gateway's transcoding) should scale close to the replica count "
    "until PostgreSQL saturates; Search spends more of each call in PostgreSQL (KEYWORD one "
    "leg, HYBRID two; each replica embeds a query once and caches it), so it scales with the "
    "database's cores more than with replicas. CreateTask: with 2 replicas twice the task "
    "worker processes run the accepted noop tasks while acceptance is measured."
)

Call = Callable[[int], Awaitable[None]]


class HTTPStatusError(Exception):
    """A gateway reply other than 200."""


def error_kind(exc: Exception) -> str:
    """UNAVAILABLE, DEADLINE_EXCEEDED, … for gRPC; the HTTP status or httpx error otherwise."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return str(exc.code().name)
    return str(exc) if isinstance(exc, HTTPStatusError) else type(exc).__name__


def rpc_count(samples: Samples, method: str) -> float:
    """`protomesh_rpc_requests_total` of `method`, summed over status codes."""
    return sum(
        value
        for labels, value in samples.get("protomesh_rpc_requests_total", [])
        if labels.get("method") == method
    )


def split(before: Sequence[float], after: Sequence[float]) -> dict[str, Any]:
    """How the calls counted between two scrapes divide over the replicas: the
    count at each replica and its share of the total (0 when nothing was counted)."""
    calls = [round(end - start) for start, end in zip(before, after, strict=True)]
    total = sum(calls)
    return {"calls": calls, "shares": [round(c / total, 3) if total else 0.0 for c in calls]}


def ratio(two: float | None, one: float | None) -> float | None:
    """two / one, rounded (None when either side is missing or `one` is 0)."""
    return round(two / one, 3) if two is not None and one else None


def compare(one: dict[str, Any], two: dict[str, Any]) -> dict[str, float | None]:
    """The 2-replica figures over the 1-replica ones."""
    return {
        "throughput_ratio_2_over_1": ratio(two.get("calls_per_s"), one.get("calls_per_s")),
        "p50_ratio_2_over_1": ratio(two.get("p50_ms"), one.get("p50_ms")),
        "p99_ratio_2_over_1": ratio(two.get("p99_ms"), one.get("p99_ms")),
    }


@dataclass
class Pass:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    def report(self) -> dict[str, Any]:
        summary = latency_summary(self.latencies)
        return {
            "calls": len(self.latencies),
            "seconds": round(self.elapsed, 2),
            "calls_per_s": round(len(self.latencies) / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": summary.get("p50_ms"),
            "p99_ms": summary.get("p99_ms"),
            "errors": dict(self.errors),
        }


async def drive(call: Call, calls: int, seconds: float, concurrency: int) -> Pass:
    """`concurrency` callers make at most `calls` calls between them, for at most `seconds`."""
    result = Pass()
    numbers = itertools.count()
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline and (i := next(numbers)) < calls:
            started = time.perf_counter()
            try:
                await call(i)
            except (grpc.aio.AioRpcError, httpx.HTTPError, HTTPStatusError) as exc:
                result.errors[error_kind(exc)] += 1
            else:
                result.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


async def _scrape(client: httpx.AsyncClient, url: str) -> Samples:
    response = await client.get(url)
    response.raise_for_status()
    return parse_samples(response.text)


async def replica_counts(
    client: httpx.AsyncClient, settings: Settings, component: str, method: str
) -> list[float]:
    """`method`'s request count at each of `component`'s replicas."""
    host = reachable(settings.host)
    urls = [
        f"http://{host}:{settings.metrics_port_of(component, i)}/metrics"
        for i in range(settings.replicas)
    ]
    scraped = await asyncio.gather(*(_scrape(client, url) for url in urls))
    return [rpc_count(samples, method) for samples in scraped]


@dataclass
class Callers:
    """One call per operation, over channels and an HTTP client this pass owns."""

    calls: dict[str, Call]
    close: Callable[[], Awaitable[None]]


def callers(system: RunningSystem, token: str, names: list[str], concurrency: int) -> Callers:
    settings = system.settings
    metadata = (("authorization", f"Bearer {token}"),)
    channels = {s: endpoint(settings, s).open() for s in ("document", "search", "task")}
    documents = doc_grpc.DocumentServiceStub(channels["document"])
    search = search_grpc.SearchServiceStub(channels["search"])
    tasks = task_grpc.TaskServiceStub(channels["task"])
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    rest = httpx.AsyncClient(
        base_url=system.gateway,
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=CALL_TIMEOUT_SECONDS,
    )
    tag = uuid.uuid4().hex[:8]

    def searching(mode: int) -> Call:
        async def call(i: int) -> None:
            request = search_pb.SearchRequest(query=QUERIES[i % len(QUERIES)], mode=mode)  # type: ignore[arg-type]
            await search.Search(request, metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)

        return call

    async def get_grpc(i: int) -> None:
        request = doc_pb.GetDocumentRequest(name=names[i % len(names)])
        await documents.GetDocument(request, metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)

    async def get_rest(i: int) -> None:
        response = await rest.get(f"/v1/{names[i % len(names)]}")
        if response.status_code != 200:
            raise HTTPStatusError(f"HTTP {response.status_code}")

    async def create_task(i: int) -> None:
        request = task_pb.CreateTaskRequest(task=task_pb.Task(type="noop"), request_id=f"{tag}-{i}")
        await tasks.CreateTask(request, metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)

    async def close() -> None:
        await rest.aclose()
        for channel in channels.values():
            await channel.close()

    calls = {
        "search_keyword": searching(search_pb.SEARCH_MODE_KEYWORD),
        "search_hybrid": searching(search_pb.SEARCH_MODE_HYBRID),
        "get_document_grpc": get_grpc,
        "get_document_rest": get_rest,
        "create_task": create_task,
    }
    return Callers(calls, close)


async def measure(system: RunningSystem, args: argparse.Namespace) -> dict[str, Any]:
    """Every operation against one running system: warm-up, then the measured pass
    between two scrapes of the serving replicas' counters."""
    tenant = "scale-" + uuid.uuid4().hex[:8]
    started = time.perf_counter()
    names = await seed(system, tenant, args.documents)
    seeded = time.perf_counter() - started
    pool = callers(system, system.token(tenant), names, args.concurrency)
    results: dict[str, Any] = {
        "seed_seconds": round(seeded, 1),
        # Other work on the machine skews both passes; say how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    try:
        async with httpx.AsyncClient(timeout=5) as scraper:
            for operation, (component, method) in OPERATIONS.items():
                call = pool.calls[operation]
                # Every caller's first calls open connections to every replica.
                await drive(call, 4 * args.concurrency, args.seconds, args.concurrency)
                before = await replica_counts(scraper, system.settings, component, method)
                measured = await drive(call, args.calls, args.seconds, args.concurrency)
                after = await replica_counts(scraper, system.settings, component, method)
                results[operation] = {**measured.report(), "split": split(before, after)}
    finally:
        await pool.close()
    return results


def summarise(by_replicas: dict[int, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    shares = []
    for operation in OPERATIONS:
        one, two = by_replicas[1][operation], by_replicas[2][operation]
        operations[operation] = {"replicas_1": one, "replicas_2": two, **compare(one, two)}
        shares.extend(two["split"]["shares"])
    smallest = min(shares) if shares else 0.0
    cpus = os.cpu_count() or 1
    return {
        "benchmark": "scale",
        "cpus": cpus,
        "load": {
            "concurrency": args.concurrency,
            # Per operation (a key spelling "operation" would match the report's "ratio").
            "max_calls": args.calls,
            "max_seconds": args.seconds,
            "documents": args.documents,
            "task_type": "noop",
        },
        "seed_seconds": {str(n): by_replicas[n]["seed_seconds"] for n in REPLICA_COUNTS},
        "load_average_1m_before": {
            str(n): by_replicas[n]["load_average_1m"] for n in REPLICA_COUNTS
        },
        "operations": operations,
        "goals": {
            "smallest_replica_share": {
                "value": smallest,
                "min": SMALLEST_SHARE_MIN,
                "met": smallest >= SMALLEST_SHARE_MIN,
            }
        },
        "note": NOTE.format(cpus=cpus),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=6000, help="calls per operation (at most)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per operation (at most)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent callers")
    parser.add_argument("--documents", type=int, default=60, help="corpus size")
    parser.add_argument("--workers", type=int, default=2, help="task worker coroutines")
    parser.add_argument("--quick", action="store_true", help="2 s per operation, 16 callers")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.seconds, args.concurrency, args.documents = 2000, 2.0, 16, 24
    by_replicas = {}
    for replicas in REPLICA_COUNTS:
        with running_system(workers=args.workers, replicas=replicas, environ=UNLIMITED) as system:
            phase(f"{replicas} replica(s) per service: Search, GetDocument, CreateTask")
            by_replicas[replicas] = asyncio.run(measure(system, args))
    result = summarise(by_replicas, args)
    print_goals(result["goals"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Mixed load against a whole protomesh (`protomesh up` as processes on free
127.0.0.1 ports): search 70 %, get 15 %, create 10 %, task submit 5 %, once
through the gateway (HTTP/JSON) and once directly over gRPC, same seed data,
same operation sequence, same concurrency.

Prints JSON: per transport the throughput, error rate and p50/p95/p99 by
operation, and the gateway/gRPC ratios. Bounded by --ops and --seconds per pass.

    .venv/bin/python -m bench.load [--ops 3000] [--seconds 30] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx

from bench.common import RunningSystem, latency_summary, running_system
from bench.goals import at_most, phase, print_goals
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc

MIX = (("search", 70), ("get", 15), ("create", 10), ("task", 5))
TOPICS = (
    "row level security isolates tenants in postgres",
    "hybrid search fuses keyword and vector rankings",
    "workers lease tasks and renew heartbeats",
    "budgets reserve money before a model call",
    "the gateway transcodes json to protobuf",
    "change feeds resume from a checkpoint",
    "embeddings are computed offline on the cpu",
    "rate limits shed load with retry hints",
)
QUERIES = (
    "tenant isolation",
    "keyword and vector",
    "task leases",
    "model budget",
    "json transcoding",
    "resume from checkpoint",
)


def document_text(i: int) -> str:
    topic = TOPICS[i % len(TOPICS)]
    return f"Note {i} about {topic}. " + " ".join(
        f"Paragraph {p}: {topic}, explained with example {i * 7 + p}." for p in range(8)
    )


def plan(count: int, seed: int = 7) -> list[str]:
    """The operation sequence both passes run (so they do the same work)."""
    names = [name for name, _ in MIX]
    weights = [weight for _, weight in MIX]
    return random.Random(seed).choices(names, weights, k=count)


@dataclass
class Pass:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    done: int = 0
    elapsed: float = 0.0

    def report(self) -> dict[str, Any]:
        failed = sum(self.errors.values())
        return {
            "ops": self.done,
            "seconds": round(self.elapsed, 2),
            "ops_per_s": round(self.done / self.elapsed, 1) if self.elapsed else 0.0,
            "error_rate": round(failed / self.done, 4) if self.done else 0.0,
            "errors": dict(self.error_kinds),
            "by_operation": {op: latency_summary(v) for op, v in sorted(self.latencies.items())},
        }


Operation = Callable[[int], Awaitable[None]]


async def drive(
    operations: dict[str, Operation], ops: list[str], seconds: float, concurrency: int
) -> Pass:
    result = Pass()
    cursor = iter(enumerate(ops))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        for i, op in cursor:
            if time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            try:
                await operations[op](i)
            except Exception as exc:  # counted, reported by kind
                result.errors[op] += 1
                code = (
                    exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else type(exc).__name__
                )
                result.error_kinds[f"{op}:{code}"] += 1
            else:
                result.latencies[op].append(time.perf_counter() - started)
            result.done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


async def seed(system: RunningSystem, tenant: str, documents: int) -> list[str]:
    """Creates the documents and waits until search has indexed all of them."""
    metadata = (("authorization", f"Bearer {system.token(tenant)}"),)
    async with grpc.aio.insecure_channel(system.settings.address_of("document")) as channel:
        stub = doc_grpc.DocumentServiceStub(channel)

        async def items() -> Any:
            for i in range(documents):
                yield doc_pb.BatchCreateDocumentsRequest(
                    document=doc_pb.Document(title=f"note {i}", content=document_text(i)),
                    request_id=f"seed-{i}",
                )

        reply = await stub.BatchCreateDocuments(items(), metadata=metadata)
        names = [result.name for result in reply.results if result.name]
    async with grpc.aio.insecure_channel(system.settings.address_of("search")) as channel:
        status_stub = search_grpc.SearchServiceStub(channel)
        for _ in range(600):
            status = await status_stub.GetIndexStatus(
                search_pb.GetIndexStatusRequest(), metadata=metadata
            )
            if status.document_count >= len(names) and status.pending_embedding_count == 0:
                break
            await asyncio.sleep(0.5)
    return names


def grpc_operations(
    system: RunningSystem, token: str, names: list[str], tag: str
) -> tuple[dict[str, Operation], list[grpc.aio.Channel]]:
    metadata = (("authorization", f"Bearer {token}"),)
    channels = [
        grpc.aio.insecure_channel(system.settings.address_of(s))
        for s in ("document", "search", "task")
    ]
    documents = doc_grpc.DocumentServiceStub(channels[0])
    search = search_grpc.SearchServiceStub(channels[1])
    tasks = task_grpc.TaskServiceStub(channels[2])

    async def do_search(i: int) -> None:
        await search.Search(
            search_pb.SearchRequest(query=QUERIES[i % len(QUERIES)]), metadata=metadata, timeout=10
        )

    async def do_get(i: int) -> None:
        await documents.GetDocument(
            doc_pb.GetDocumentRequest(name=names[i % len(names)]), metadata=metadata, timeout=10
        )

    async def do_create(i: int) -> None:
        await documents.CreateDocument(
            doc_pb.CreateDocumentRequest(
                document=doc_pb.Document(title=f"load {i}", content=document_text(i)),
                request_id=f"{tag}-{i}",
            ),
            metadata=metadata,
            timeout=10,
        )

    async def do_task(i: int) -> None:
        await tasks.CreateTask(
            task_pb.CreateTaskRequest(task=task_pb.Task(type="noop"), request_id=f"{tag}-t{i}"),
            metadata=metadata,
            timeout=10,
        )

    return {"search": do_search, "get": do_get, "create": do_create, "task": do_task}, channels


def rest_operations(client: httpx.AsyncClient, names: list[str], tag: str) -> dict[str, Operation]:
    async def call(
        method: str, path: str, body: dict[str, Any] | None = None, **headers: str
    ) -> None:
        response = await client.request(method, path, json=body, headers=headers)
        if response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code}")

    async def do_search(i: int) -> None:
        await call("POST", "/v1/search", {"query": QUERIES[i % len(QUERIES)]})

    async def do_get(i: int) -> None:
        await call("GET", f"/v1/{names[i % len(names)]}")

    async def do_create(i: int) -> None:
        await call(
            "POST",
            "/v1/documents",
            {"title": f"load {i}", "content": document_text(i)},
            **{"Idempotency-Key": f"{tag}-{i}"},
        )

    async def do_task(i: int) -> None:
        await call("POST", "/v1/tasks", {"type": "noop"}, **{"Idempotency-Key": f"{tag}-t{i}"})

    return {"search": do_search, "get": do_get, "create": do_create, "task": do_task}


async def run(system: RunningSystem, args: argparse.Namespace) -> dict[str, Any]:
    tenant = "load-" + uuid.uuid4().hex[:8]
    token = system.token(tenant)
    names = await seed(system, tenant, args.documents)
    ops = plan(args.ops)

    operations, channels = grpc_operations(system, token, names, "grpc")
    await drive(operations, ops[: min(50, len(ops))], args.seconds, args.concurrency)  # warm-up
    direct = await drive(operations, ops, args.seconds, args.concurrency)
    for channel in channels:
        await channel.close()

    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(
        base_url=system.gateway,
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=10,
    ) as client:
        rest = rest_operations(client, names, "rest")
        await drive(rest, ops[: min(50, len(ops))], args.seconds, args.concurrency)  # warm-up
        gateway = await drive(rest, ops, args.seconds, args.concurrency)

    direct_report, gateway_report = direct.report(), gateway.report()
    ratios: dict[str, Any] = {
        "throughput_gateway_over_grpc": round(
            gateway_report["ops_per_s"] / direct_report["ops_per_s"], 3
        )
        if direct_report["ops_per_s"]
        else None,
    }
    for op, summary in gateway_report["by_operation"].items():
        base = direct_report["by_operation"].get(op, {})
        if summary.get("p50_ms") and base.get("p50_ms"):
            ratios[f"{op}_p50_gateway_over_grpc"] = round(summary["p50_ms"] / base["p50_ms"], 3)
    return {
        "benchmark": "load",
        "mix": dict(MIX),
        "concurrency": args.concurrency,
        "seed_documents": len(names),
        "workers": args.workers,
        "grpc": direct_report,
        "gateway": gateway_report,
        "ratios": ratios,
        "goals": {
            "grpc_error_rate": at_most(direct_report["error_rate"], 0.0),
            "gateway_error_rate": at_most(gateway_report["error_rate"], 0.0),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ops", type=int, default=3000, help="operations per pass (upper bound)")
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound per pass")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--documents", type=int, default=300, help="seed documents")
    parser.add_argument("--workers", type=int, default=2, help="task worker coroutines")
    args = parser.parse_args()
    with running_system(workers=args.workers) as system:
        phase(f"mixed load, {args.concurrency} callers, gRPC then through the gateway")
        result = asyncio.run(run(system, args))
    print_goals(result["goals"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

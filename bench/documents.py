"""DocumentService throughput and latency, end to end (gRPC + PostgreSQL).

Starts its own embedded PostgreSQL in a temp dir, migrates it, serves
DocumentService in-process on 127.0.0.1 and measures:
- unary CreateDocument throughput (1 KB documents, concurrent callers);
- BatchCreateDocuments streaming throughput (1 KB documents, one stream and
  several parallel streams), counted as documents stored per second;
- GetDocument latency p50/p99 (sequential);
- WatchChanges write→delivery latency p50/p99: from the CreateDocument reply
  (the write committed) to the change arriving on a live watcher.
Prints JSON. Goals (issue 4): streaming ≥ 2,000 docs/s stored, delivery p50 ≤ 20 ms.

    .venv/bin/python bench/documents.py [--docs 4000] [--gets 2000] [--watch 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from bench.goals import at_least, at_most, phase, print_goals
from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.document.service import SPEC
from services.platform.config import Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.logs import configure_logging
from services.platform.migrations import migrate
from services.platform.server import ServiceServer

BODY = ("lorem ipsum dolor sit amet " * 40)[:1024]
Metadata = tuple[tuple[str, str], ...]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def doc(i: int, tag: str) -> pb.Document:
    return pb.Document(content=f"{tag} {i} {BODY}"[:1024], title=f"{tag} {i}")


async def unary_creates(
    stub: pb_grpc.DocumentServiceStub, auth: Metadata, count: int, concurrency: int
) -> dict[str, float]:
    async def worker(w: int) -> None:
        for i in range(w, count, concurrency):
            await stub.CreateDocument(
                pb.CreateDocumentRequest(document=doc(i, "unary"), request_id=f"u-{i}"),
                metadata=auth,
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"docs": count, "concurrency": concurrency, "docs_per_s": round(count / elapsed, 1)}


async def streamed_creates(
    stub: pb_grpc.DocumentServiceStub, auth: Metadata, count: int, streams: int, tag: str
) -> dict[str, float]:
    async def items(s: int) -> AsyncIterator[pb.BatchCreateDocumentsRequest]:
        for i in range(s, count, streams):
            yield pb.BatchCreateDocumentsRequest(document=doc(i, tag), request_id=f"{tag}-{i}")

    started = time.perf_counter()
    replies = await asyncio.gather(
        *(stub.BatchCreateDocuments(items(s), metadata=auth) for s in range(streams))
    )
    elapsed = time.perf_counter() - started
    stored = sum(r.created_count for r in replies)
    assert stored == count, f"stored {stored} of {count}"
    return {"docs": count, "streams": streams, "docs_per_s": round(stored / elapsed, 1)}


async def get_latency(
    stub: pb_grpc.DocumentServiceStub, auth: Metadata, calls: int
) -> dict[str, float]:
    created = await stub.CreateDocument(
        pb.CreateDocumentRequest(document=doc(0, "get")), metadata=auth
    )
    request = pb.GetDocumentRequest(name=created.name)
    for _ in range(100):
        await stub.GetDocument(request, metadata=auth)
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        await stub.GetDocument(request, metadata=auth)
        latencies.append(time.perf_counter() - started)
    return {
        "calls": calls,
        "p50_ms": ms(statistics.median(latencies)),
        "p99_ms": ms(percentile(latencies, 0.99)),
    }


async def watch_latency(
    stub: pb_grpc.DocumentServiceStub, auth: Metadata, writes: int
) -> dict[str, float]:
    arrived: dict[int, float] = {}
    all_arrived = asyncio.Event()
    head = await stub.CreateDocument(pb.CreateDocumentRequest(document=doc(0, "w")), metadata=auth)
    call = stub.WatchChanges(pb.WatchChangesRequest(after_sequence=head.sequence), metadata=auth)

    async def follow() -> None:
        async for message in call:
            if message.HasField("change"):
                arrived[message.change.sequence] = time.perf_counter()
                if len(arrived) == writes:
                    all_arrived.set()

    follower = asyncio.ensure_future(follow())
    await asyncio.sleep(0.2)
    acked: dict[int, float] = {}
    for i in range(writes):
        created = await stub.CreateDocument(
            pb.CreateDocumentRequest(document=doc(i, "watch")), metadata=auth
        )
        acked[created.sequence] = time.perf_counter()
        await asyncio.sleep(0.005)  # a trickle of writes: measure wake-up, not backlog
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_arrived.wait(), 5)
    call.cancel()
    follower.cancel()
    delays = [max(arrived[s] - t, 0.0) for s, t in acked.items() if s in arrived]
    return {
        "writes": writes,
        "delivered": len(delays),
        "p50_ms": ms(statistics.median(delays)),
        "p99_ms": ms(percentile(delays, 0.99)),
    }


async def run(owner_dsn: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    await migrate(owner_dsn)
    settings = Settings(data_dir=data_dir, database_url=owner_dsn, db_pool_max=20)
    ensure_dev_key(data_dir)
    token = mint_token(
        load_key(data_dir / "dev-signing-key.pem"),
        tenant="bench",
        user="bench",
        scopes="documents:read documents:write",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    auth: Metadata = (("authorization", f"Bearer {token}"),)
    server = ServiceServer(SPEC, settings, port=0)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    stub = pb_grpc.DocumentServiceStub(channel)
    try:
        await streamed_creates(stub, auth, 200, 1, "warmup")
        result: dict[str, Any] = {
            "unary_create": await unary_creates(stub, auth, args.docs // 2, 16),
            "stream_create_1": await streamed_creates(stub, auth, args.docs, 1, "s1"),
            "stream_create_4": await streamed_creates(stub, auth, args.docs, 4, "s4"),
            "get_document": await get_latency(stub, auth, args.gets),
            "watch_delivery": await watch_latency(stub, auth, args.watch),
            "cpus": os.cpu_count(),
        }
    finally:
        await channel.close()
        await server.stop(grace=1.0)
    best_stream = max(
        result["stream_create_1"]["docs_per_s"], result["stream_create_4"]["docs_per_s"]
    )
    result["goals"] = {
        "stream_docs_per_s": at_least(best_stream, 2000),
        "watch_delivery_p50_ms": at_most(result["watch_delivery"]["p50_ms"], 20),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--watch", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmb") as tmp, open(os.devnull, "w") as sink:
        configure_logging("bench", "warning", "json", stream=sink)  # to /dev/null
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        owner_dsn = postgres.start()
        try:
            phase("DocumentService writes, reads and the change feed")
            result = asyncio.run(run(owner_dsn, Path(tmp), args))
        finally:
            postgres.stop()
    print_goals(result["goals"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

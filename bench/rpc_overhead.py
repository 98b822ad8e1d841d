"""Cost of the platform's interceptor chain on a unary RPC.

Runs, in one process and one event loop, the same trivial GetDocument servicer on
(a) a bare `grpc.aio` server and (b) a server with protomesh's full chain (request
id + JSON log line, metrics, JWT verification + scopes, protovalidate, deadline,
error mapping), and measures sequential round-trip latency (p50/p99) and
throughput with concurrent callers. Prints JSON with the ratio chain/bare.
Goals: chain p50 at most 1.25 times bare p50 (issue 3); chain throughput at
least 0.8 times bare at 16 callers (issue 16).

    .venv/bin/python bench/rpc_overhead.py [--calls 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench.goals import at_least, at_most, phase, print_goals
from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.platform.config import Settings
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.interceptors import ServerChain
from services.platform.logs import configure_logging
from services.platform.policy import service_methods
from services.platform.server import token_verifier

DESCRIPTOR = pb.DESCRIPTOR.services_by_name["DocumentService"]


class Echo(pb_grpc.DocumentServiceServicer):
    async def GetDocument(self, request: pb.GetDocumentRequest, context: Any) -> pb.Document:
        return pb.Document(name=request.name, title="bench")


async def start(interceptors: list[Any]) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(interceptors=interceptors)
    pb_grpc.add_DocumentServiceServicer_to_server(Echo(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def measure(port: int, metadata: Any, calls: int, concurrency: int) -> dict[str, float]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.DocumentServiceStub(channel)
        request = pb.GetDocumentRequest(name="documents/bench")
        for _ in range(200):  # warm-up
            await stub.GetDocument(request, metadata=metadata)
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            await stub.GetDocument(request, metadata=metadata)
            latencies.append(time.perf_counter() - started)

        async def worker(n: int) -> None:
            for _ in range(n):
                await stub.GetDocument(request, metadata=metadata)

        per_worker = max(calls // concurrency, 1)
        started = time.perf_counter()
        await asyncio.gather(*(worker(per_worker) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 4),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 4),
        "throughput_rps": round(per_worker * concurrency / elapsed, 1),
    }


async def main(calls: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as sink:  # noqa: ASYNC230
        configure_logging("bench", "info", "json", stream=sink)  # to /dev/null
        settings = Settings(data_dir=Path(tmp))
        ensure_dev_key(settings.data_dir)
        token = mint_token(
            load_key(settings.data_dir / "dev-signing-key.pem"),
            tenant="bench",
            user="bench",
            scopes="documents:read",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        metadata = (("authorization", f"Bearer {token}"),)
        bare, bare_port = await start([])
        chain = ServerChain(service_methods(DESCRIPTOR), token_verifier(settings))
        full, full_port = await start([chain])
        try:
            # Interleave rounds so drift on a noisy machine hits both sides alike.
            rounds: dict[str, list[dict[str, float]]] = {"bare": [], "chain": []}
            for _ in range(3):
                rounds["bare"].append(await measure(bare_port, metadata, calls, concurrency))
                rounds["chain"].append(await measure(full_port, metadata, calls, concurrency))
        finally:
            await bare.stop(None)
            await full.stop(None)
    result: dict[str, Any] = {"calls_per_round": calls, "concurrency": concurrency, "rounds": 3}
    for name, values in rounds.items():
        result[name] = {
            key: round(statistics.median(v[key] for v in values), 4) for key in values[0]
        }
    result["ratio_p50"] = round(result["chain"]["p50_ms"] / result["bare"]["p50_ms"], 3)
    result["ratio_p99"] = round(result["chain"]["p99_ms"] / result["bare"]["p99_ms"], 3)
    result["ratio_throughput"] = round(
        result["chain"]["throughput_rps"] / result["bare"]["throughput_rps"], 3
    )
    result["goals"] = {
        "ratio_p50": at_most(result["ratio_p50"], 1.25),
        "ratio_throughput": at_least(result["ratio_throughput"], 0.8),
    }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    phase(f"bare grpc.aio and the interceptor chain, 3 interleaved rounds of {args.calls} calls")
    outcome = asyncio.run(main(args.calls, args.concurrency))
    print_goals(outcome["goals"])
    print(json.dumps(outcome, indent=2))

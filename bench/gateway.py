"""Gateway overhead: GetThing (a small unary) via REST through the gateway
(`python -m gateway`, real uvicorn on 127.0.0.1) vs direct gRPC, in one run.

Latency: sequential calls from one client (p50/p99). Throughput: `--concurrency`
clients for `--seconds`, with 1 and 2 gateway workers. Prints one JSON object.
Until the protomesh services run end to end, the backend is the gateway test
servicer (tests/integration/gateway/harness.py) in this process.

    .venv/bin/python -m bench.gateway [--calls 2000] [--seconds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx

from tests.integration.gateway.harness import REPO, SERVICE, compile_test_protos, start_backend


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
    }


async def _latency(call: Callable[[], Awaitable[Any]], calls: int) -> list[float]:
    for _ in range(min(200, calls)):
        await call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


async def _throughput(call: Callable[[], Awaitable[Any]], seconds: float, clients: int) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return round(done / (time.perf_counter() - start), 1)


async def _start_gateway(compiled: Any, backend: str, workers: int) -> tuple[Any, str]:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(compiled.out_dir), str(REPO)]),
        "PROTOMESH_GATEWAY_PROTO_MODULES": "gatewaytest.v1.gatewaytest_pb2",
        "PROTOMESH_GATEWAY_BACKENDS": f"{SERVICE}={backend}",
        "PROTOMESH_GATEWAY_DESCRIPTOR_SET": str(compiled.descriptor_set),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        env=env,
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as probe:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if (await probe.get("/readyz")).status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError("gateway did not start")


async def _http_floor(calls: int) -> dict[str, float]:
    """p50/p99 of the same httpx client against bench/http_floor.py (no transcoding)."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.http_floor", str(port), cwd=REPO
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    (await client.get("/v1/things/bench")).raise_for_status()
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)

            async def floor_call() -> None:
                (await client.get("/v1/things/bench")).raise_for_status()

            return _percentiles(await _latency(floor_call, calls))
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)


async def main(calls: int, seconds: float, concurrency: int) -> dict[str, Any]:
    compiled = compile_test_protos(Path(tempfile.mkdtemp(prefix="gwbench")))
    backend = await start_backend(compiled)
    pb = compiled.pb2
    channel = grpc.aio.insecure_channel(backend.address)
    get = channel.unary_unary(
        f"/{SERVICE}/GetThing",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.Thing.FromString,
    )

    async def grpc_call() -> None:
        await get(pb.GetThingRequest(name="things/bench"), timeout=5)

    result: dict[str, Any] = {"benchmark": "gateway", "method": "GetThing", "calls": calls}
    grpc_latency = _percentiles(await _latency(grpc_call, calls))
    result["grpc"] = {
        **grpc_latency,
        "throughput_rps": await _throughput(grpc_call, seconds, concurrency),
    }
    for workers in (1, 2):
        process, url = await _start_gateway(compiled, backend.address, workers)
        try:
            limits = httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            )
            async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:

                async def rest_call() -> None:
                    response = await client.get("/v1/things/bench")
                    response.raise_for_status()

                entry: dict[str, Any] = {}
                if workers == 1:
                    entry.update(_percentiles(await _latency(rest_call, calls)))
                entry["throughput_rps"] = await _throughput(rest_call, seconds, concurrency)
                result[f"rest_{workers}_worker{'s' if workers > 1 else ''}"] = entry
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 15)
    result["p50_ratio_rest_over_grpc"] = round(
        result["rest_1_worker"]["p50_ms"] / grpc_latency["p50_ms"], 2
    )
    floor = await _http_floor(calls)
    rest = result["rest_1_worker"]["p50_ms"]
    result["http_floor"] = floor
    result["gateway_p50_over_http_floor_ms"] = round(rest - floor["p50_ms"], 3)
    result["grpc_p50_over_http_floor"] = round(grpc_latency["p50_ms"] / floor["p50_ms"], 2)
    result["concurrency"] = concurrency
    result["note"] = (
        "client and backend share this process; REST client is httpx (slower than a gRPC stub "
        "client), so the ratio includes client-side cost; http_floor is the same client against "
        "a bare starlette route on the same uvicorn stack (bench/http_floor.py): REST p50 minus "
        "it is what transcoding plus the gRPC hop add"
    )
    await channel.close()
    await backend.server.stop(0)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    outcome = asyncio.run(asyncio.wait_for(main(args.calls, args.seconds, args.concurrency), 300))
    print(json.dumps(outcome, indent=2))

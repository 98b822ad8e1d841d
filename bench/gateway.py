"""Gateway overhead: GetThing (a small unary) via REST through the gateway
(`python -m gateway`, real uvicorn on 127.0.0.1) vs direct gRPC, in one run.

Latency: sequential calls from one client, in `--rounds` interleaved rounds (each
round calls every target `--calls / --rounds` times, in a rotated order, so a
neighbour's load lands on all of them alike); each ratio is the median of the
per-round ratios. The targets:

- `grpc`: a grpc.aio stub straight to the backend (the baseline);
- `http_floor`: the same HTTP client against the smallest starlette app on the
  gateway's uvicorn stack (bench/http_floor.py) — HTTP alone;
- `hop_floor`: that app awaiting the same gRPC call (bytes in, bytes out) before
  answering — HTTP plus the gRPC hop, no transcoding: the least any gateway that
  forwards over gRPC from Python can cost here;
- `rest`: the gateway of this checkout; with `--compare DIR` also the gateway of
  another checkout (`git worktree add /tmp/base REV`), for A/B in the same run.

Every HTTP target is called twice per round: with httpx (the figures at the top
level, as this bench always reported) and with `LeanHttp`, a minimal keep-alive
client (`lean_client`), because httpx alone costs about as much as a whole gRPC
call and would hide what the servers cost.

Throughput: `--concurrency` clients for `--seconds`, gRPC and the gateway with 1
and 2 workers. The goal (issue 16): REST p50 / gRPC p50 ≤ 1.5, reported for both
clients. Prints one JSON object (stdout) and a summary with each goal's pass/fail
(stderr).

The backend is the gateway test servicer (tests/integration/gateway/harness.py) in
a process of its own, so every client here calls another process, as real clients
do. (A grpc.aio client in the server's own process measures 0.3-0.8 ms by turns,
with where the OS puts its threads on 2 shared cores: a baseline that moved the
ratio between 2.4x and 7x from one run to the next.)

    .venv/bin/python -m bench.gateway [--calls 2000] [--rounds 5] [--seconds 3]
        [--concurrency 16] [--compare DIR [--compare-label NAME]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench.goals import phase
from services.platform.config import environment_without_settings
from tests.integration.gateway.harness import (
    REPO,
    SERVICE,
    Compiled,
    compile_test_protos,
    start_backend,
)

BACKEND_READY = "backend listening on "

GOAL_P50_RATIO_MAX = 1.5
PATH = "/v1/things/bench"
METHOD = f"/{SERVICE}/GetThing"

Call = Callable[[], Awaitable[None]]


@dataclass
class Target:
    """One thing the client calls, and the latencies measured so far (seconds, by round)."""

    name: str
    call: Call
    rounds: list[list[float]] = field(default_factory=list)

    @property
    def samples(self) -> list[float]:
        return [sample for round_ in self.rounds for sample in round_]

    def round_p50s(self) -> list[float]:
        return [statistics.median(round_) for round_ in self.rounds]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 3),
    }


def _median_ratio(top: Target, bottom: Target) -> float:
    """The median over rounds of top's p50 / bottom's p50 in the same round."""
    ratios = [a / b for a, b in zip(top.round_p50s(), bottom.round_p50s(), strict=True)]
    return round(statistics.median(ratios), 2)


def _median_gap_ms(top: Target, bottom: Target) -> float:
    gaps = [a - b for a, b in zip(top.round_p50s(), bottom.round_p50s(), strict=True)]
    return round(statistics.median(gaps) * 1000, 3)


async def _interleaved(targets: Sequence[Target], calls: int, rounds: int) -> None:
    """Warms every target, then `rounds` rounds of `calls // rounds` sequential calls
    each, the order rotated by one every round."""
    for target in targets:
        for _ in range(min(200, calls)):
            await target.call()
    per_round = max(1, calls // rounds)
    for index in range(rounds):
        order = [*targets[index % len(targets) :], *targets[: index % len(targets)]]
        for target in order:
            samples = []
            for _ in range(per_round):
                start = time.perf_counter()
                await target.call()
                samples.append(time.perf_counter() - start)
            target.rounds.append(samples)


async def _throughput(call: Call, seconds: float, clients: int) -> float:
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


@contextlib.asynccontextmanager
async def _serving(
    command: Sequence[str], env: dict[str, str], cwd: Path, port: int, ready_path: str
) -> AsyncIterator[str]:
    """Runs an HTTP server process until it answers `ready_path` with 200; its URL."""
    process = await asyncio.create_subprocess_exec(*command, env=env, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as probe:
            deadline = time.monotonic() + 30
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(ready_path)).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(command)} did not start")
                await asyncio.sleep(0.1)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 15)


@contextlib.asynccontextmanager
async def _backend(compiled: Compiled) -> AsyncIterator[str]:
    """The test servicer in a process of its own (`--serve-backend`); its address."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.gateway",
        "--serve-backend",
        str(compiled.out_dir),
        env=environment_without_settings(PYTHONPATH=str(REPO)),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        text = line.decode().strip()
        if not text.startswith(BACKEND_READY):
            raise RuntimeError(f"the backend did not start: {text!r}")
        yield text.removeprefix(BACKEND_READY)
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 15)


async def serve_backend(out_dir: Path) -> None:
    """`--serve-backend`: runs the servicer until terminated."""
    backend = await start_backend(compile_test_protos(out_dir))
    print(BACKEND_READY + backend.address, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await backend.server.stop(0)


def _gateway(
    compiled: Compiled, backend: str, workers: int, checkout: Path = REPO
) -> contextlib.AbstractAsyncContextManager[str]:
    port = _free_port()
    env = environment_without_settings(
        PYTHONPATH=os.pathsep.join([str(compiled.out_dir), str(checkout)]),
        PROTOMESH_LOG_LEVEL="warning",
        PROTOMESH_GATEWAY_HOST="127.0.0.1",
        PROTOMESH_GATEWAY_PORT=str(port),
        PROTOMESH_GATEWAY_WORKERS=str(workers),
        PROTOMESH_GATEWAY_PROTO_MODULES="gatewaytest.v1.gatewaytest_pb2",
        PROTOMESH_GATEWAY_BACKENDS=f"{SERVICE}={backend}",
        PROTOMESH_GATEWAY_DESCRIPTOR_SET=str(compiled.descriptor_set),
    )
    return _serving([sys.executable, "-m", "gateway"], env, checkout, port, "/readyz")


def _floor(*hop: str) -> contextlib.AbstractAsyncContextManager[str]:
    port = _free_port()
    command = [sys.executable, "-m", "bench.http_floor", str(port), *hop]
    return _serving(command, environment_without_settings(PYTHONPATH=str(REPO)), REPO, port, PATH)


def _http_call(client: httpx.AsyncClient) -> Call:
    async def call() -> None:
        (await client.get(PATH)).raise_for_status()

    return call


async def main(
    calls: int,
    rounds: int,
    seconds: float,
    concurrency: int,
    compare: Path | None = None,
    compare_label: str = "compare",
) -> dict[str, Any]:
    compiled = compile_test_protos(Path(tempfile.mkdtemp(prefix="gwbench")))
    async with _backend(compiled) as backend:
        return await _measure(
            compiled, backend, calls, rounds, seconds, concurrency, compare, compare_label
        )


class LeanHttp:
    """A minimal HTTP/1.1 keep-alive client (one fixed GET, Content-Length bodies):
    what calling the server costs when the client costs next to nothing. httpx spends
    about 0.45 ms of its own per call here, as much as a whole gRPC call."""

    def __init__(self, url: str) -> None:
        self.host, port = url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.request = (
            f"GET {PATH} HTTP/1.1\r\nhost: {self.host}:{port}\r\naccept: */*\r\n\r\n"
        ).encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self) -> None:
        try:
            await self._call()
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed the idle connection (uvicorn's keep-alive timeout is
            # 5 s, shorter than a round of the other targets): once more, anew.
            await self.close()
            await self._call()

    async def _call(self) -> None:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"unexpected answer {head[:40]!r}")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)

    async def close(self) -> None:
        if self.streams is not None:
            writer, self.streams = self.streams[1], None
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _measure(
    compiled: Compiled,
    backend: str,
    calls: int,
    rounds: int,
    seconds: float,
    concurrency: int,
    compare: Path | None,
    compare_label: str,
) -> dict[str, Any]:
    pb = compiled.pb2
    request = pb.GetThingRequest(name="things/bench")
    channel = grpc.aio.insecure_channel(backend)
    get = channel.unary_unary(
        METHOD,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.Thing.FromString,
    )

    async def grpc_call() -> None:
        await get(request, timeout=5)

    hop = ["--backend", backend, "--method", METHOD]
    hop += ["--request", request.SerializeToString().hex()]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    result: dict[str, Any] = {"benchmark": "gateway", "method": "GetThing"}
    async with contextlib.AsyncExitStack() as stack:
        urls = {
            "http_floor": await stack.enter_async_context(_floor()),
            "hop_floor": await stack.enter_async_context(_floor(*hop)),
            "rest": await stack.enter_async_context(_gateway(compiled, backend, 1)),
        }
        if compare is not None:
            urls[compare_label] = await stack.enter_async_context(
                _gateway(compiled, backend, 1, compare)
            )
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, limits=limits, timeout=10)
            )
            for name, url in urls.items()
        }
        targets = {"grpc": Target("grpc", grpc_call)}
        for name, url in urls.items():
            targets[name] = Target(name, _http_call(clients[name]))
            lean = LeanHttp(url)
            stack.push_async_callback(lean.close)
            targets[f"lean_{name}"] = Target(f"lean_{name}", lean.call)
        phase(f"{len(targets)} targets, {rounds} interleaved rounds of {calls} calls")
        await _interleaved(list(targets.values()), calls, rounds)
        phase(f"throughput, {concurrency} callers, {seconds:g} s per target")

        def p50s(name: str) -> dict[str, float]:
            return _percentiles(targets[name].samples)

        def ratio(top: str, bottom: str = "grpc") -> float:
            return _median_ratio(targets[top], targets[bottom])

        def gap(top: str, bottom: str) -> float:
            return _median_gap_ms(targets[top], targets[bottom])

        result.update(calls=len(targets["grpc"].samples), rounds=rounds)
        result["grpc"] = {
            **p50s("grpc"),
            "throughput_rps": await _throughput(grpc_call, seconds, concurrency),
        }
        result["http_floor"] = p50s("http_floor")
        result["hop_floor"] = p50s("hop_floor")
        result["rest_1_worker"] = {
            **p50s("rest"),
            "throughput_rps": await _throughput(_http_call(clients["rest"]), seconds, concurrency),
        }
        result["p50_ratio_rest_over_grpc"] = ratio("rest")
        result["p50_ratio_hop_floor_over_grpc"] = ratio("hop_floor")
        result["grpc_p50_over_http_floor"] = ratio("grpc", "http_floor")
        result["gateway_p50_over_http_floor_ms"] = gap("rest", "http_floor")
        result["hop_floor_p50_over_http_floor_ms"] = gap("hop_floor", "http_floor")
        result["gateway_p50_over_hop_floor_ms"] = gap("rest", "hop_floor")
        result["lean_client"] = {
            "http_floor": p50s("lean_http_floor"),
            "hop_floor": p50s("lean_hop_floor"),
            "rest": p50s("lean_rest"),
            "p50_ratio_lean_rest_over_grpc": ratio("lean_rest"),
            "p50_ratio_lean_hop_floor_over_grpc": ratio("lean_hop_floor"),
            "lean_http_floor_p50_over_grpc": ratio("lean_http_floor"),
            "lean_hop_floor_p50_over_http_floor_ms": gap("lean_hop_floor", "lean_http_floor"),
            "lean_gateway_p50_over_hop_floor_ms": gap("lean_rest", "lean_hop_floor"),
        }
        if compare is not None:
            lean_other = f"lean_{compare_label}"
            result[compare_label] = {
                "checkout": str(compare),
                **p50s(compare_label),
                "throughput_rps": await _throughput(
                    _http_call(clients[compare_label]), seconds, concurrency
                ),
                "p50_ratio_over_grpc": ratio(compare_label),
                "p50_over_hop_floor_ms": gap(compare_label, "hop_floor"),
                "rest_p50_ratio_over_this": ratio("rest", compare_label),
                "lean_p50_ms": p50s(lean_other)["p50_ms"],
                "lean_p50_ratio_over_grpc": ratio(lean_other),
                "lean_p50_over_hop_floor_ms": gap(lean_other, "lean_hop_floor"),
                "lean_rest_p50_ratio_over_this": ratio("lean_rest", lean_other),
            }
    async with (
        _gateway(compiled, backend, 2) as url,
        httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client,
    ):
        result["rest_2_workers"] = {
            "throughput_rps": await _throughput(_http_call(client), seconds, concurrency)
        }
    result["goals"] = {
        name: {"value": value, "max": GOAL_P50_RATIO_MAX, "met": value <= GOAL_P50_RATIO_MAX}
        for name, value in (
            ("p50_ratio_rest_over_grpc", result["p50_ratio_rest_over_grpc"]),
            (
                "p50_ratio_lean_rest_over_grpc",
                result["lean_client"]["p50_ratio_lean_rest_over_grpc"],
            ),
        )
    }
    result["concurrency"] = concurrency
    result["note"] = (
        "the backend runs in a process of its own. REST figures at the top use httpx, "
        "lean_client the same servers through a minimal keep-alive HTTP/1.1 client "
        "(httpx alone costs about as much as a gRPC call). http_floor: a bare starlette "
        "route on the gateway's uvicorn stack; hop_floor: that route awaiting the same gRPC "
        "call, bytes in and out. REST minus hop_floor is what transcoding adds; hop_floor "
        "minus http_floor is the gRPC hop. Ratios and gaps are medians of per-round values "
        "from interleaved rounds."
    )
    await channel.close()
    return result


def summary(result: dict[str, Any]) -> str:
    """The human lines: each target's p50, the ratios and the goals' pass/fail."""
    lean = result["lean_client"]
    lines = [
        f"p50 ms: gRPC {result['grpc']['p50_ms']} | httpx: HTTP floor "
        f"{result['http_floor']['p50_ms']}, hop floor {result['hop_floor']['p50_ms']}, REST "
        f"{result['rest_1_worker']['p50_ms']} | lean client: HTTP floor "
        f"{lean['http_floor']['p50_ms']}, hop floor {lean['hop_floor']['p50_ms']}, REST "
        f"{lean['rest']['p50_ms']}",
    ]
    for name, goal in result["goals"].items():
        lines.append(
            f"{name} = {goal['value']} (goal <= {goal['max']}: {'PASS' if goal['met'] else 'FAIL'})"
        )
    lines.append(
        f"with no transcoding at all (hop floor / gRPC): httpx "
        f"{result['p50_ratio_hop_floor_over_grpc']}, lean "
        f"{lean['p50_ratio_lean_hop_floor_over_grpc']}"
    )
    for name, value in result.items():
        if isinstance(value, dict) and "checkout" in value:
            lines.append(
                f"{name} ({value['checkout']}): REST {value['p50_ms']} ms (lean "
                f"{value['lean_p50_ms']}); this checkout / it = "
                f"{value['rest_p50_ratio_over_this']} "
                f"(lean {value['lean_rest_p50_ratio_over_this']})"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000, help="sequential calls per target")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--compare", type=Path, help="another checkout's gateway, for A/B")
    parser.add_argument("--compare-label", default="compare")
    parser.add_argument("--serve-backend", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backend:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_backend(args.serve_backend))
        sys.exit(0)
    outcome = asyncio.run(
        asyncio.wait_for(
            main(
                args.calls,
                args.rounds,
                args.seconds,
                args.concurrency,
                args.compare.resolve() if args.compare else None,
                args.compare_label,
            ),
            600,
        )
    )
    print(summary(outcome), file=sys.stderr)
    print(json.dumps(outcome, indent=2))

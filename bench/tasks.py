"""Task queue throughput and submit→start latency, end to end.

Starts its own embedded PostgreSQL in a temp dir, migrates it, runs TaskService
(`python -m services.task`) and worker processes (`python -m services.task.worker`)
as separate processes, submits `noop` tasks through gRPC from this process, and
waits until every one is COMPLETED. Runs once with 1 worker process and once
with N. Reports throughput (tasks/s from first submit to last completion) and
submit→start latency (task `start_time - create_time`, both stamped by
PostgreSQL) p50/p99, as JSON. A paced pass first submits at a steady rate the
queue keeps up with (--rate), since flat out every task also waits for the
backlog ahead of it. Goals (issue 6): ≥ 500 tasks/s flat out; submit→start p50
≤ 25 ms paced (its p99 is reported beside it).

    .venv/bin/python bench/tasks.py [--tasks 3000] [--processes 2] [--count 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from bench.goals import at_least, at_most, phase, print_goals
from protomesh.task.v1 import task_service_pb2 as pb
from protomesh.task.v1 import task_service_pb2_grpc as pb_grpc
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import KEY_FILE, ensure_dev_key, load_key, mint_token
from services.platform.migrations import migrate

TENANT = "bench"
TIMEOUT_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def wait_serving(port: int) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + 30
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        while time.monotonic() < deadline:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1.0
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("TaskService did not start")


async def run_once(
    env: dict[str, str],
    owner_dsn: str,
    port: int,
    token: str,
    tasks: int,
    processes: int,
    count: int,
    concurrency: int,
    rate: float | None = None,
) -> dict[str, Any]:
    """One pass: `tasks` noop tasks submitted by `concurrency` callers as fast as they
    go (the queue's throughput) or, with `rate`, one every 1/rate s (its latency when
    it keeps up, which is what a caller waits for)."""
    conn = await asyncpg.connect(owner_dsn)
    await conn.execute("DELETE FROM task.tasks")
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.task.worker", "--count", str(count), env=env
        )
        for _ in range(processes)
    ]
    await asyncio.sleep(1.5)  # workers connected and LISTENing
    metadata = (("authorization", f"Bearer {token}"),)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(tasks):
        queue.put_nowait(i)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.TaskServiceStub(channel)
            request = pb.CreateTaskRequest(task=pb.Task(type="noop"))
            for _ in range(50):  # warm-up (not measured)
                await stub.CreateTask(request, metadata=metadata)

            async def submitter() -> None:
                while not queue.empty():
                    queue.get_nowait()
                    await stub.CreateTask(request, metadata=metadata)

            for _ in range(600):  # the warm-up tasks finish
                if not await conn.fetchval("SELECT count(*) FROM task.tasks WHERE state <> 5"):
                    break
                await asyncio.sleep(0.05)
            await conn.execute("DELETE FROM task.tasks")
            started = time.perf_counter()
            if rate is None:
                await asyncio.gather(*(submitter() for _ in range(concurrency)))
            else:
                await paced(lambda: stub.CreateTask(request, metadata=metadata), tasks, rate)
            submit_seconds = time.perf_counter() - started
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while True:
                done = await conn.fetchval("SELECT count(*) FROM task.tasks WHERE state = 5")
                if done >= tasks:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {done} of {tasks} completed in time")
                await asyncio.sleep(0.01)
            total_seconds = time.perf_counter() - started
        rows = await conn.fetch(
            "SELECT extract(epoch FROM start_time - create_time) * 1000 AS wait_ms,"
            " extract(epoch FROM end_time - start_time) * 1000 AS run_ms FROM task.tasks"
        )
        waits = [float(r["wait_ms"]) for r in rows]
        span = await conn.fetchval(
            "SELECT extract(epoch FROM max(end_time) - min(create_time)) FROM task.tasks"
        )
        return {
            "worker_processes": processes,
            "slots_per_process": count,
            "tasks": tasks,
            "submit_concurrency": "paced" if rate else concurrency,
            "submit_rate_per_s": round(tasks / submit_seconds, 1),
            "throughput_tasks_per_s": round(tasks / total_seconds, 1),
            "db_span_throughput_tasks_per_s": round(tasks / float(span), 1),
            "submit_to_start": {
                "p50_ms": round(percentile(waits, 0.5), 2),
                "p99_ms": round(percentile(waits, 0.99), 2),
                "max_ms": round(max(waits), 2),
            },
        }
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            await asyncio.wait_for(worker.wait(), 20)
        await conn.close()


async def paced(submit: Callable[[], Awaitable[Any]], tasks: int, rate: float) -> None:
    """Starts `submit()` every 1/rate s on a fixed schedule (a slow call does not
    delay the next one) and waits for all of them."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    calls = []
    for i in range(tasks):
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        calls.append(asyncio.ensure_future(submit()))
    await asyncio.gather(*calls)


def goals(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The goals of issue 6 in the {value, min|max, met} shape `protomesh bench` prints
    beside the figure: ≥ 500 tasks/s (the best flat-out run), and submit→start p50
    ≤ 25 ms at a rate the queue keeps up with (the paced run: flat out, every task
    also waits for the ones queued before it, which measures the backlog)."""
    throughput = max(run["throughput_tasks_per_s"] for run in runs.values())
    waits = runs["paced"]["submit_to_start"]
    return {
        "throughput_tasks_per_s": at_least(throughput, 500),
        "submit_to_start_p50_ms": at_most(waits["p50_ms"], 25),
    }


async def main_async(args: argparse.Namespace, data_dir: Path, owner_dsn: str) -> dict[str, Any]:
    await migrate(owner_dsn)
    ensure_dev_key(data_dir)
    port = free_port()
    env = {
        **os.environ,
        "PROTOMESH_DATA_DIR": str(data_dir),
        "PROTOMESH_DATABASE_URL": owner_dsn,
        "PROTOMESH_TASK_PORT": str(port),
        "PROTOMESH_LOG_LEVEL": "warning",
        "PROTOMESH_DB_POOL_MAX": "20",
        # The queue's own throughput is measured here, not the per-tenant limits (the
        # `expensive` class, CreateTask's, allows 600 a minute by default).
        "PROTOMESH_TENANT_RATE_LIMITS": "expensive=0",
    }
    service = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.task", env=env)
    try:
        await wait_serving(port)
        token = mint_token(
            load_key(data_dir / KEY_FILE),
            tenant=TENANT,
            user="bench",
            scopes="tasks:read tasks:write",
            issuer="protomesh-dev",
            audience="protomesh",
        )
        runs: dict[str, dict[str, Any]] = {}
        phase(f"{args.paced_tasks} noop tasks at {args.rate:g}/s, 1 worker process")
        runs["paced"] = await run_once(
            env, owner_dsn, port, token, args.paced_tasks, 1, args.count, 1, args.rate
        )
        runs["paced"]["rate_per_s"] = args.rate
        for processes in dict.fromkeys((1, args.processes)):
            phase(f"{args.tasks} noop tasks, {processes} worker process(es)")
            runs[f"{processes}_worker_processes"] = await run_once(
                env,
                owner_dsn,
                port,
                token,
                args.tasks,
                processes,
                args.count,
                args.concurrency,
            )
        return {
            "benchmark": "tasks",
            "cpus": os.cpu_count(),
            "runs": runs,
            "goals": goals(runs),
        }
    finally:
        service.terminate()
        await asyncio.wait_for(service.wait(), 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--processes", type=int, default=2, help="N worker processes")
    parser.add_argument("--count", type=int, default=16, help="slots per worker process")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent submitters")
    parser.add_argument("--rate", type=float, default=100.0, help="paced run: tasks per second")
    parser.add_argument("--paced-tasks", type=int, default=300, help="paced run: tasks")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmb") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        owner_dsn = postgres.start()
        try:
            result = asyncio.run(main_async(args, Path(tmp), owner_dsn))
        finally:
            postgres.stop()
    text = json.dumps(result, indent=2)
    print_goals(result["goals"])
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

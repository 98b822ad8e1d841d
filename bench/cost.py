"""CostService reserve+commit throughput and the overspend check, end to end
(gRPC + PostgreSQL).

Starts its own embedded PostgreSQL in a temp dir, migrates it, serves CostService
in-process on 127.0.0.1 and measures:
- reserve+commit pairs per second with 1 and with 32 concurrent clients (one
  tenant with a tenant budget and a user budget, so every pair locks and updates
  two budget rows — the realistic worst case: everything contends);
- overspend under contention: 32 clients reserve+commit against ONE hard budget
  until it is exhausted, while a probe samples committed + reserved; reports the
  largest value seen and the final spend minus the limit (must be 0).
Client load runs in a separate process by default (`--client-processes 1`), so
the server's event loop does not share its core with the clients; `0` runs the
clients in the server's own event loop. Prints JSON. Goals (issue 7): ≥ 1,000
pairs/s; overspend exactly 0.

    .venv/bin/python bench/cost.py [--pairs 3000] [--clients 32] [--client-processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.cost.service import make_spec
from services.platform.config import Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.logs import configure_logging
from services.platform.migrations import migrate
from services.platform.server import ServiceServer

MODEL = "bench-model"  # 1 micro per input token
Metadata = tuple[tuple[str, str], ...]


def token(settings: Settings, tenant: str, scopes: str) -> Metadata:
    key = load_key(settings.data_dir / "dev-signing-key.pem")
    jwt = mint_token(
        key,
        tenant=tenant,
        user="bench",
        scopes=scopes,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=3600,
    )
    return (("authorization", f"Bearer {jwt}"),)


async def pairs(port: int, auth: Metadata, total: int, clients: int, amount: int) -> dict[str, Any]:
    """`total` reserve+commit pairs spread over `clients` concurrent callers (one
    channel each); returns pairs/s and how many reserves were refused."""
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(clients)]
    stubs = [pb_grpc.CostServiceStub(c) for c in channels]
    remaining = total
    refused = 0
    latencies: list[float] = []

    async def client(stub: pb_grpc.CostServiceStub) -> None:
        nonlocal remaining, refused
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                reservation = await stub.Reserve(
                    pb.ReserveRequest(amount_micros=amount), metadata=auth
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                refused += 1
                continue
            await stub.CommitReservation(
                pb.CommitReservationRequest(
                    name=reservation.name, usage=pb.TokenUsage(model=MODEL, input_tokens=amount)
                ),
                metadata=auth,
            )
            latencies.append(time.perf_counter() - started)

    for stub in stubs[: min(clients, 4)]:  # warm-up: channels, prepared statements
        await stub.ListBudgets(pb.ListBudgetsRequest(), metadata=auth)
    started = time.perf_counter()
    await asyncio.gather(*(client(s) for s in stubs))
    elapsed = time.perf_counter() - started
    for channel in channels:
        await channel.close()
    latencies.sort()
    done = len(latencies)
    return {
        "clients": clients,
        "pairs": done,
        "refused": refused,
        "seconds": round(elapsed, 3),
        "pairs_per_second": round(done / elapsed, 1),
        "pair_p50_ms": round(latencies[done // 2] * 1000, 2) if done else None,
        "pair_p99_ms": round(latencies[min(done - 1, int(done * 0.99))] * 1000, 2)
        if done
        else None,
    }


def _client_process(
    port: int, auth: Metadata, total: int, clients: int, amount: int, out: Any
) -> None:
    out.send(asyncio.run(pairs(port, auth, total, clients, amount)))


async def run_clients(
    processes: int, port: int, auth: Metadata, total: int, clients: int, amount: int
) -> dict[str, Any]:
    if processes == 0:
        return await pairs(port, auth, total, clients, amount)
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_client_process, args=(port, auth, total, clients, amount, send))
    proc.start()
    result: dict[str, Any] = await asyncio.to_thread(receive.recv)
    await asyncio.to_thread(proc.join)
    return result


async def budget(stub: pb_grpc.CostServiceStub, auth: Metadata, hard: int, **kw: Any) -> pb.Budget:
    return await stub.CreateBudget(
        pb.CreateBudgetRequest(
            budget=pb.Budget(period=pb.PERIOD_MONTH, hard_limit_micros=hard, **kw)
        ),
        metadata=auth,
    )


async def overspend_check(
    args: argparse.Namespace,
    port: int,
    settings: Settings,
    owner_dsn: str,
    stub: pb_grpc.CostServiceStub,
) -> dict[str, Any]:
    tenant = "contended-" + uuid.uuid4().hex[:6]
    auth = token(settings, tenant, "cost:read cost:write")
    fits, amount = args.overspend_fits, 1000
    limit = fits * amount
    await budget(stub, auth, limit, scope_kind=pb.SCOPE_KIND_TENANT)
    probe = await asyncpg.connect(owner_dsn)  # the owner bypasses RLS: a bird's-eye probe
    peak = 0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            used = await probe.fetchval(
                "SELECT coalesce(sum(s.spent_micros), 0) + max(b.reserved_micros) "
                "FROM cost.budgets b LEFT JOIN cost.budget_spend s ON s.budget_pk = b.pk "
                "WHERE b.tenant_id = $1 GROUP BY b.pk",
                tenant,
            )
            peak = max(peak, int(used or 0))
            await asyncio.sleep(0.002)

    sampler = asyncio.create_task(sample())
    result = await run_clients(args.client_processes, port, auth, fits * 3, args.clients, amount)
    stop.set()
    await sampler
    spent = await probe.fetchval(
        "SELECT coalesce(sum(s.spent_micros), 0) FROM cost.budget_spend s "
        "JOIN cost.budgets b ON b.pk = s.budget_pk WHERE b.tenant_id = $1",
        tenant,
    )
    recorded = await probe.fetchval(
        "SELECT coalesce(sum(amount_micros), 0) FROM cost.usage_records WHERE tenant_id = $1",
        tenant,
    )
    await probe.close()
    return {
        "clients": args.clients,
        "limit_micros": limit,
        "attempted_pairs": fits * 3,
        "committed_pairs": result["pairs"],
        "refused_reserves": result["refused"],
        "spent_micros": int(spent),
        "recorded_micros": int(recorded),
        "peak_committed_plus_reserved_micros": peak,
        "overspend_micros": max(0, int(spent) - limit, peak - limit),
    }


async def run(args: argparse.Namespace, dsn: str, data_dir: Path) -> dict[str, Any]:
    await migrate(dsn)
    ensure_dev_key(data_dir)
    settings = Settings(
        data_dir=data_dir, database_url=dsn, log_level="warning", db_pool_max=args.pool
    )
    server = ServiceServer(make_spec(), settings, port=0)
    port = await server.start()
    try:
        admin = token(settings, "ops", "cost:read cost:write cost:admin")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.CostServiceStub(channel)
            await stub.UpsertPrice(
                pb.UpsertPriceRequest(price=pb.Price(model=MODEL, input_micros_per_mtok=1_000_000)),
                metadata=admin,
            )
            tenant = "bench-" + uuid.uuid4().hex[:6]
            auth = token(settings, tenant, "cost:read cost:write")
            await budget(stub, auth, 10**15, scope_kind=pb.SCOPE_KIND_TENANT)
            await budget(stub, auth, 10**15, scope_kind=pb.SCOPE_KIND_USER, scope_id="bench")
            one = await run_clients(args.client_processes, port, auth, args.pairs // 3, 1, 100)
            many = await run_clients(
                args.client_processes, port, auth, args.pairs, args.clients, 100
            )
            overspend = await overspend_check(args, port, settings, dsn, stub)
    finally:
        await server.stop(grace=1.0)
    return {
        "cpu_count": os.cpu_count(),
        "client_processes": args.client_processes,
        "throughput_1_client": one,
        f"throughput_{args.clients}_clients": many,
        "overspend_under_contention": overspend,
        "goal_pairs_per_second": 1000,
        "goal_met": many["pairs_per_second"] >= 1000 and overspend["overspend_micros"] == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000, help="pairs for the concurrent run")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--client-processes", type=int, default=1, choices=(0, 1))
    parser.add_argument(
        "--overspend-fits", type=int, default=500, help="reservations the budget fits"
    )
    parser.add_argument("--pool", type=int, default=16, help="server database pool size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmcost") as tmp, open(os.devnull, "w") as sink:
        configure_logging("bench", "warning", "json", stream=sink)  # to /dev/null
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = postgres.start()
        try:
            result = asyncio.run(run(args, dsn, Path(tmp)))
        finally:
            postgres.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

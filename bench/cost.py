"""CostService throughput — reserve+commit pairs and Charge calls per second at 1
and 32 clients — and the overspend check, end to end (gRPC + PostgreSQL).

Starts its own embedded PostgreSQL in a temp dir, migrates it and serves
CostService twice in this process, on the same database:
- `group_commit` — as shipped: calls of a tenant that arrive while one of its
  batches is being written go to PostgreSQL together as the next batch;
- `per_call` — every call its own statement and transaction as soon as it
  comes, as before group commit (`CostOptions(group_commit_max_batch=1)`): the
  A side of the A/B.
Each is measured with both ways of metering a call: `reserve_commit` (Reserve,
then CommitReservation: a pair) and `charge` (one Charge: a pair in one call),
at 1 client and at `--clients` (32). One tenant with a tenant budget and a user
budget, so every call locks and updates two budget rows — everything contends.
The cells run in interleaved rounds (which service goes first alternates) and
each figure is the median of its rounds: the machine is shared, so only
figures from the same run are compared.

Overspend: for each service and way, `--clients` callers meter against ONE hard
budget that has room for `--overspend-fits` calls, three times as many calls as
fit, while a probe samples committed + reserved; reports the largest value seen
and the final spend minus the limit (must be 0).

Client load runs in one separate process (`--client-processes 1`, the default),
so the servers' event loop does not share its core with the clients; `0` runs
the clients in the servers' own event loop. Prints JSON (stdout) and a table with
each figure's goal and pass/fail (stderr). Goals: ≥ 1,000 pairs/s at 32 clients
(issue 16); overspend exactly 0; at 1 client (the issue sets none) a lone caller
pays nothing for group commit (reserve+commit ≥ 0.8x per call: the median of
per-round ratios, noise allowed) and one Charge beats a pair (≥ 1.5x).

    .venv/bin/python -m bench.cost [--pairs 3000] [--rounds 3] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from bench.goals import phase
from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from services.cost.group_commit import GroupCommit
from services.cost.service import make_spec
from services.cost.servicer import CostOptions, CostServicer
from services.platform.config import Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.logs import configure_logging
from services.platform.migrations import migrate
from services.platform.server import ServiceServer

MODEL = "bench-model"  # 1 micro per input token
Metadata = tuple[tuple[str, str], ...]
PATHS = ("group_commit", "per_call")
WAYS = ("reserve_commit", "charge")
GOAL_PAIRS_PER_SECOND = 1000
# At 1 client (no goal in the issue): a lone caller pays nothing for group commit
# (same-run ratio, noise allowed), and one Charge beats Reserve + Commit.
GOAL_LONE_CALLER_RATIO = 0.8
GOAL_CHARGE_OVER_PAIR_RATIO = 1.5


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


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True)
class Job:
    """`total` calls of one way over `clients` concurrent callers (one channel each)."""

    port: int
    auth: Metadata
    way: str
    total: int
    clients: int
    amount: int


async def pairs(job: Job) -> dict[str, Any]:
    """Runs a job; pairs/s, latencies, and how many calls a budget refused."""
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{job.port}") for _ in range(job.clients)]
    stubs = [pb_grpc.CostServiceStub(c) for c in channels]
    remaining = job.total
    refused = 0
    latencies: list[float] = []
    usage = pb.TokenUsage(model=MODEL, input_tokens=job.amount)

    async def reserve_commit(stub: pb_grpc.CostServiceStub) -> None:
        reservation = await stub.Reserve(
            pb.ReserveRequest(amount_micros=job.amount), metadata=job.auth
        )
        await stub.CommitReservation(
            pb.CommitReservationRequest(name=reservation.name, usage=usage), metadata=job.auth
        )

    async def charge(stub: pb_grpc.CostServiceStub) -> None:
        await stub.Charge(
            pb.ChargeRequest(usage=usage, request_id=uuid.uuid4().hex), metadata=job.auth
        )

    one = reserve_commit if job.way == "reserve_commit" else charge

    async def client(stub: pb_grpc.CostServiceStub) -> None:
        nonlocal remaining, refused
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                await one(stub)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                refused += 1
                continue
            latencies.append(time.perf_counter() - started)

    for stub in stubs[: min(job.clients, 4)]:  # warm-up: channels
        await stub.ListBudgets(pb.ListBudgetsRequest(), metadata=job.auth)
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(client(s) for s in stubs))
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    for channel in channels:
        await channel.close()
    latencies.sort()
    done = len(latencies)
    return {
        "clients": job.clients,
        "pairs": done,
        "refused": refused,
        "seconds": round(elapsed, 3),
        "pairs_per_second": round(done / elapsed, 1),
        "pair_p50_ms": round(latencies[done // 2] * 1000, 2) if done else None,
        "pair_p99_ms": round(latencies[min(done - 1, int(done * 0.99))] * 1000, 2)
        if done
        else None,
        "client_process_cpu_ms_per_pair": round(cpu * 1000 / done, 3) if done else None,
    }


def _client_process(jobs: Any, results: Any) -> None:
    """The client process: runs the jobs it is sent until it is sent None."""

    async def serve() -> None:
        while (job := await asyncio.to_thread(jobs.recv)) is not None:
            results.send(await pairs(job))

    asyncio.run(serve())


class Clients:
    """Where the load comes from: one long-lived process (or this event loop)."""

    def __init__(self, processes: int) -> None:
        self._process: Any = None
        if processes:
            ctx = multiprocessing.get_context("spawn")
            self._jobs, jobs = ctx.Pipe()
            results, self._results = ctx.Pipe()
            self._process = ctx.Process(target=_client_process, args=(jobs, results))
            self._process.start()

    async def run(self, job: Job) -> dict[str, Any]:
        if self._process is None:
            return await pairs(job)
        self._jobs.send(job)
        result: dict[str, Any] = await asyncio.to_thread(self._results.recv)
        return result

    async def close(self) -> None:
        if self._process is not None:
            self._jobs.send(None)
            await asyncio.to_thread(self._process.join)


async def budget(stub: pb_grpc.CostServiceStub, auth: Metadata, hard: int, **kw: Any) -> pb.Budget:
    return await stub.CreateBudget(
        pb.CreateBudgetRequest(
            budget=pb.Budget(period=pb.PERIOD_MONTH, hard_limit_micros=hard, **kw)
        ),
        metadata=auth,
    )


@dataclass
class Served:
    """One CostService of the A/B and a client of it."""

    name: str
    server: ServiceServer
    port: int
    channel: grpc.aio.Channel
    stub: pb_grpc.CostServiceStub

    def group_commit(self) -> GroupCommit[Any, Any]:
        servicer = self.server._parts.servicer  # this process serves it: read its counters
        assert isinstance(servicer, CostServicer)
        return servicer.store.group_commit


async def measure(clients: Clients, served: Served, job: Job) -> dict[str, Any]:
    """A job, with the CPU this process (the services, not the clients) spent on it
    and how many calls the service wrote per statement on average."""
    writes = served.group_commit()
    batches, calls = writes.batches_written, writes.calls_written
    before = _cpu_seconds()
    result = await clients.run(job)
    spent = _cpu_seconds() - before
    if result["pairs"]:
        result["service_process_cpu_ms_per_pair"] = round(spent * 1000 / result["pairs"], 3)
    written = writes.batches_written - batches
    result["calls_per_batch"] = (
        round((writes.calls_written - calls) / written, 1) if written else None
    )
    return result


async def overspend_check(
    args: argparse.Namespace,
    served: Served,
    way: str,
    clients: Clients,
    settings: Settings,
    owner_dsn: str,
) -> dict[str, Any]:
    tenant = f"contended-{way}-" + uuid.uuid4().hex[:6]
    auth = token(settings, tenant, "cost:read cost:write")
    fits, amount = args.overspend_fits, 1000
    limit = fits * amount
    await budget(served.stub, auth, limit, scope_kind=pb.SCOPE_KIND_TENANT)
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
    result = await clients.run(Job(served.port, auth, way, fits * 3, args.clients, amount))
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
        "refused": result["refused"],
        "spent_micros": int(spent),
        "recorded_micros": int(recorded),
        "peak_committed_plus_reserved_micros": peak,
        "overspend_micros": max(0, int(spent) - limit, int(recorded) - limit, peak - limit),
    }


def _median_cell(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median pairs/s, with every round's figure beside it."""
    ordered = sorted(runs, key=lambda run: run["pairs_per_second"])
    cell = dict(ordered[len(ordered) // 2])
    cell["pairs_per_second"] = round(statistics.median(r["pairs_per_second"] for r in runs), 1)
    cell["rounds_pairs_per_second"] = [run["pairs_per_second"] for run in runs]
    return cell


def goals(throughput: dict[str, Any], overspend: dict[str, Any], clients: int) -> dict[str, Any]:
    """Each figure's goal in the {value, min|max, met} shape `protomesh bench` prints:
    at `clients`, ≥ 1,000 pairs/s (issue 16); at 1 client, group commit over per call
    (reserve+commit) and Charge over reserve+commit (both group commit), same run."""
    found: dict[str, Any] = {}
    for way in WAYS:
        value = throughput["group_commit"][way][f"clients_{clients}"]["pairs_per_second"]
        found[f"{way}_pairs_per_s_{clients}_clients"] = {
            "value": value,
            "min": GOAL_PAIRS_PER_SECOND,
            "met": value >= GOAL_PAIRS_PER_SECOND,
        }
    lone = _ratio(throughput, "reserve_commit", "clients_1")
    found["reserve_commit_1_client_group_commit_over_per_call"] = {
        "value": lone,
        "min": GOAL_LONE_CALLER_RATIO,
        "met": lone >= GOAL_LONE_CALLER_RATIO,
    }
    shipped = throughput["group_commit"]
    one_call = _paired_ratio(shipped["charge"]["clients_1"], shipped["reserve_commit"]["clients_1"])
    found["charge_1_client_over_reserve_commit"] = {
        "value": one_call,
        "min": GOAL_CHARGE_OVER_PAIR_RATIO,
        "met": one_call >= GOAL_CHARGE_OVER_PAIR_RATIO,
    }
    worst = max(check["overspend_micros"] for path in overspend.values() for check in path.values())
    found["overspend_micros"] = {"value": worst, "max": 0, "met": worst == 0}
    return found


def _paired_ratio(top: dict[str, Any], bottom: dict[str, Any]) -> float:
    """The median over rounds of top / bottom, each round's two figures measured
    back to back (steadier than the ratio of the medians on a shared machine)."""
    pairs = zip(top["rounds_pairs_per_second"], bottom["rounds_pairs_per_second"], strict=True)
    return round(statistics.median(a / b for a, b in pairs if b), 2)


def _ratio(throughput: dict[str, Any], way: str, cell: str) -> float:
    """Group commit over per call, for one way and number of clients."""
    return _paired_ratio(throughput["group_commit"][way][cell], throughput["per_call"][way][cell])


async def run(args: argparse.Namespace, dsn: str, data_dir: Path) -> dict[str, Any]:
    await migrate(dsn)
    ensure_dev_key(data_dir)
    settings = Settings(
        data_dir=data_dir, database_url=dsn, log_level="warning", db_pool_max=args.pool
    )
    max_batch = {"group_commit": CostOptions().group_commit_max_batch, "per_call": 1}
    services: dict[str, Served] = {}
    clients = Clients(args.client_processes)
    try:
        for name in PATHS:
            spec = make_spec(options=CostOptions(group_commit_max_batch=max_batch[name]))
            server = ServiceServer(spec, settings, port=0)
            port = await server.start()
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            services[name] = Served(name, server, port, channel, pb_grpc.CostServiceStub(channel))
        admin = token(settings, "ops", "cost:read cost:write cost:admin")
        await services[PATHS[0]].stub.UpsertPrice(
            pb.UpsertPriceRequest(price=pb.Price(model=MODEL, input_micros_per_mtok=1_000_000)),
            metadata=admin,
        )
        auths: dict[str, Metadata] = {}
        for name, served in services.items():
            tenant = f"bench-{name}-" + uuid.uuid4().hex[:6]
            auths[name] = token(settings, tenant, "cost:read cost:write")
            await budget(served.stub, auths[name], 10**15, scope_kind=pb.SCOPE_KIND_TENANT)
            await budget(
                served.stub,
                auths[name],
                10**15,
                scope_kind=pb.SCOPE_KIND_USER,
                scope_id="bench",
            )
            for way in WAYS:  # warm-up: prepared statements, pools, the price book
                await clients.run(Job(served.port, auths[name], way, 200, args.clients, 100))

        cells: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {
            name: {way: {} for way in WAYS} for name in PATHS
        }
        shapes = [
            (way, count, total)
            for way in WAYS
            for count, total in ((1, max(args.pairs // 3, 1)), (args.clients, args.pairs))
        ]
        for round_index in range(args.rounds):
            phase(f"round {round_index + 1} of {args.rounds}: {len(shapes)} cells per service")
            for shape_index, (way, count, total) in enumerate(shapes):
                # Which service goes first alternates from cell to cell and round to
                # round, so neither always follows the heavier cell.
                first = (round_index + shape_index) % 2
                for name in (PATHS[first], PATHS[1 - first]):
                    job = Job(services[name].port, auths[name], way, total, count, 100)
                    result = await measure(clients, services[name], job)
                    cells[name][way].setdefault(f"clients_{count}", []).append(result)
        throughput = {
            name: {
                way: {cell: _median_cell(runs) for cell, runs in by_cell.items()}
                for way, by_cell in by_way.items()
            }
            for name, by_way in cells.items()
        }
        overspend = {
            name: {
                way: await overspend_check(args, services[name], way, clients, settings, dsn)
                for way in WAYS
            }
            for name in PATHS
        }
    finally:
        await clients.close()
        for served in services.values():
            await served.channel.close()
            await served.server.stop(grace=1.0)
    many = f"clients_{args.clients}"
    return {
        "benchmark": "cost",
        "cpu_count": os.cpu_count(),
        "client_processes": args.client_processes,
        "rounds": args.rounds,
        "throughput": throughput,
        "ratios": {
            f"group_commit_over_per_call_{way}_{cell}": _ratio(throughput, way, cell)
            for way in WAYS
            for cell in ("clients_1", many)
        }
        | {
            f"charge_over_reserve_commit_{name}_{cell}": _paired_ratio(
                throughput[name]["charge"][cell], throughput[name]["reserve_commit"][cell]
            )
            for name in PATHS
            for cell in ("clients_1", many)
        },
        "overspend_under_contention": overspend,
        "goals": goals(throughput, overspend, args.clients),
        "note": (
            "group_commit is CostService as shipped; per_call is the same service with group "
            "commit off (every call its own statement and transaction), measured in the same "
            "run. A pair is Reserve + CommitReservation (two calls) or one Charge. Figures are "
            "medians of interleaved rounds on a shared machine; "
            "service_process_cpu_ms_per_pair is the CPU of the process serving both services, "
            "client_process_cpu_ms_per_pair that of the clients' process (with "
            "--client-processes 0 both are the same process)."
        ),
    }


def summary(result: dict[str, Any], clients: int) -> str:
    """The human table: every figure with its goal and pass/fail."""
    throughput, found = result["throughput"], result["goals"]
    labels = {"reserve_commit": "reserve+commit", "charge": "Charge"}
    rows = [f"{'path':<13} {'way':<15} clients  pairs/s  {'goal':<31} result"]

    def verdict(met: bool) -> str:
        return "PASS" if met else "FAIL"

    for way in WAYS:
        for count in (1, clients):
            for name in PATHS:
                value = throughput[name][way][f"clients_{count}"]["pairs_per_second"]
                if count == clients:
                    goal = f"≥ {GOAL_PAIRS_PER_SECOND:,} pairs/s"
                    met = verdict(value >= GOAL_PAIRS_PER_SECOND)
                elif name == "group_commit" and way == "reserve_commit":
                    ratio = found["reserve_commit_1_client_group_commit_over_per_call"]
                    goal = f"≥ {GOAL_LONE_CALLER_RATIO}x per_call ({ratio['value']}x)"
                    met = verdict(ratio["met"])
                elif name == "group_commit":
                    ratio = found["charge_1_client_over_reserve_commit"]
                    goal = f"≥ {GOAL_CHARGE_OVER_PAIR_RATIO}x reserve+commit ({ratio['value']}x)"
                    met = verdict(ratio["met"])
                else:
                    goal, met = "baseline (A/B)", "-"
                rows.append(
                    f"{name:<13} {labels[way]:<15} {count:>7}  {value:>7,.0f}  {goal:<31} {met}"
                )
    for name, checks in result["overspend_under_contention"].items():
        for way, check in checks.items():
            rows.append(
                f"{name:<13} {labels[way]:<15} {check['clients']:>7}  overspend "
                f"{check['overspend_micros']} micros (room for {check['limit_micros']}, "
                f"{check['committed_pairs']} charged, {check['refused']} refused); goal 0: "
                f"{verdict(check['overspend_micros'] == 0)}"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000, help="pairs per 32-client cell")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per cell")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--client-processes", type=int, default=1, choices=(0, 1))
    parser.add_argument(
        "--overspend-fits", type=int, default=500, help="calls the contended budget fits"
    )
    parser.add_argument("--pool", type=int, default=16, help="server database pool size")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pmcost") as tmp, open(os.devnull, "w") as sink:
        configure_logging("bench", "warning", "json", stream=sink)  # to /dev/null
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = postgres.start()
        try:
            result = asyncio.run(run(args, dsn, Path(tmp)))
        finally:
            postgres.stop()
    print(summary(result, args.clients), file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

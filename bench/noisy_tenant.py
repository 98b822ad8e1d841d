"""Noisy neighbour: a quiet tenant's GetDocument latency alone, then while another
tenant floods the same DocumentService with many concurrent callers, under the
platform's per-tenant limits (default settings, or --rate/--in-flight).

Prints JSON: the quiet tenant's p50/p99 in both runs and their ratio (goal: p99 with
the flood at most 2x alone), and how many of the flood's calls were served or shed.

    .venv/bin/python -m bench.noisy_tenant [--calls 1000] [--flooders 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from bench.common import latency_summary
from bench.goals import at_most, phase, print_goals
from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.document.service import SPEC
from services.platform.config import Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.logs import configure_logging
from services.platform.migrations import migrate
from services.platform.server import ServiceServer

Metadata = tuple[tuple[str, str], ...]


async def quiet_latencies(
    stub: pb_grpc.DocumentServiceStub, auth: Metadata, name: str, calls: int
) -> list[float]:
    """Sequential reads at a polite pace (one caller, like an interactive user)."""
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        await stub.GetDocument(pb.GetDocumentRequest(name=name), metadata=auth)
        seconds.append(time.perf_counter() - started)
        await asyncio.sleep(0.002)
    return seconds


def retry_delay(exc: grpc.aio.AioRpcError) -> float:
    """The RetryInfo delay a shed call carries (0.1 s when it carries none)."""
    status = rpc_status.from_call(exc)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    return 0.1


async def flood(
    target: str, auth: Metadata, name: str, seconds: float, callers: int, polite: bool
) -> dict[str, int]:
    counts = {"served": 0, "shed": 0, "other_errors": 0}
    deadline = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.DocumentServiceStub(channel)

        async def caller() -> None:
            while time.monotonic() < deadline:
                try:
                    await stub.GetDocument(pb.GetDocumentRequest(name=name), metadata=auth)
                    counts["served"] += 1
                except grpc.aio.AioRpcError as exc:
                    shed = exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    counts["shed" if shed else "other_errors"] += 1
                    if shed and polite:
                        await asyncio.sleep(retry_delay(exc))

        await asyncio.gather(*(caller() for _ in range(callers)))
    return counts


def flood_process(
    target: str, auth: Metadata, name: str, seconds: float, callers: int, polite: bool, out: Any
) -> None:
    """The noisy tenant, in a process of its own (as it would be: another client);
    polite: a shed caller waits the RetryInfo delay, as a well-behaved client does."""
    out.put(asyncio.run(flood(target, auth, name, seconds, callers, polite)))


async def run(owner_dsn: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    await migrate(owner_dsn)
    limits = {
        "tenant_rate_limits": args.rate or None,
        "tenant_burst_seconds": args.burst,
        "tenant_max_in_flight": args.in_flight,
    }
    settings = Settings(
        data_dir=data_dir,
        database_url=owner_dsn,
        db_pool_max=args.pool,
        **{name: value for name, value in limits.items() if value is not None},
    )
    ensure_dev_key(data_dir)
    key = load_key(data_dir / "dev-signing-key.pem")

    def auth(tenant: str) -> Metadata:
        token = mint_token(
            key,
            tenant=tenant,
            user="bench",
            scopes="documents:read documents:write",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        return (("authorization", f"Bearer {token}"),)

    quiet, noisy = auth("quiet"), auth("noisy")
    server = ServiceServer(SPEC, settings, port=0)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    stub = pb_grpc.DocumentServiceStub(channel)
    try:
        mine = await stub.CreateDocument(
            pb.CreateDocumentRequest(document=pb.Document(title="q", content="quiet data")),
            metadata=quiet,
        )
        theirs = await stub.CreateDocument(
            pb.CreateDocumentRequest(document=pb.Document(title="n", content="noisy data")),
            metadata=noisy,
        )
        await quiet_latencies(stub, quiet, mine.name, 100)  # warm-up
        phase(f"the quiet tenant alone, {args.calls} calls")
        alone = await quiet_latencies(stub, quiet, mine.name, args.calls)
        phase_seconds = sum(alone) + args.calls * 0.002
        results: Any = multiprocessing.get_context("spawn").Queue()
        noisy_client = multiprocessing.get_context("spawn").Process(
            target=flood_process,
            args=(
                f"127.0.0.1:{server.port}",
                noisy,
                theirs.name,
                phase_seconds * 3 + 3.0,
                args.flooders,
                args.polite,
                results,
            ),
        )
        noisy_client.start()
        await asyncio.sleep(2.0)  # the flood is under way
        phase(f"the quiet tenant beside {args.flooders} flooding callers")
        crowded = await quiet_latencies(stub, quiet, mine.name, args.calls)
        counts = await asyncio.to_thread(results.get, True, phase_seconds * 10 + 60)
        noisy_client.join(timeout=10)
    finally:
        await channel.close()
        await server.stop(grace=1.0)
    before, during = latency_summary(alone), latency_summary(crowded)
    ratio = round(during["p99_ms"] / before["p99_ms"], 3)
    return {
        "benchmark": "noisy_tenant",
        "limits": {
            "tenant_rate_limits": settings.tenant_rate_limits,
            "tenant_max_in_flight": settings.tenant_max_in_flight,
            "tenant_burst_seconds": settings.tenant_burst_seconds,
        },
        "flooders": args.flooders,
        "flood_honours_retry_info": args.polite,
        "quiet_alone": before,
        "quiet_with_flood": during,
        "p99_ratio_with_flood_over_alone": ratio,
        "p50_ratio_with_flood_over_alone": round(during["p50_ms"] / before["p50_ms"], 3),
        "flood": counts,
        "goals": {"p99_ratio_with_flood_over_alone": at_most(ratio, 2.0)},
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="quiet calls per phase")
    parser.add_argument("--flooders", type=int, default=32, help="noisy concurrent callers")
    parser.add_argument("--rate", default="", help="tenant_rate_limits (default: settings)")
    parser.add_argument("--in-flight", type=int, default=None, help="tenant_max_in_flight")
    parser.add_argument("--burst", type=float, default=None, help="tenant_burst_seconds")
    parser.add_argument("--pool", type=int, default=20, help="db_pool_max")
    parser.add_argument(
        "--polite", action="store_true", help="the flood honours RetryInfo when shed"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmb") as tmp, open(os.devnull, "w") as sink:
        configure_logging("bench", "warning", "json", stream=sink)
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        owner_dsn = postgres.start()
        try:
            result = asyncio.run(run(owner_dsn, Path(tmp), args))
        finally:
            postgres.stop()
    print_goals(result["goals"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

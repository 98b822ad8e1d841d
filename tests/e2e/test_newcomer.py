"""What the README promises a newcomer after `make run`: `protomesh ingest` some
files, `protomesh ask` a question, get a cited answer — through the real CLI,
services, worker processes and the real search and cost services — and the
spend shows up in the tenant's usage."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from tests.cluster import Cluster
from tests.conftest import bearer

HANDBOOK = """# Vacation policy

Employees at Northwind accrue twenty-five vacation days per year.
Unused vacation days carry over until the end of March of the following year.
Requests longer than two weeks need approval from a department head.
"""


def cli_environ(cluster: Cluster) -> dict[str, str]:
    """The environment a shell on the cluster's machine would have."""
    environ = {**os.environ, **cluster.settings.to_env()}
    environ["NO_COLOR"] = "1"
    environ["COLUMNS"] = "200"
    return environ


def protomesh(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=cli_environ(cluster),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


async def wait_until_searchable(cluster: Cluster, tenant: str, query: str) -> None:
    async with cluster.channel("search") as channel:
        stub = search_grpc.SearchServiceStub(channel)
        for _ in range(200):
            found = await stub.Search(
                search_pb.SearchRequest(query=query, mode=search_pb.SEARCH_MODE_KEYWORD),
                metadata=bearer(cluster.token(tenant, user="dev")),
            )
            if found.results:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{query!r} never became searchable for {tenant}")


async def tenant_with_handbook(cluster: Cluster, folder: Path) -> str:
    """A new tenant that has run `protomesh ingest` on the handbook, indexed."""
    tenant = "newcomer-" + uuid.uuid4().hex[:8]
    (folder / "handbook.md").write_text(HANDBOOK)
    ingested = await asyncio.to_thread(
        protomesh, cluster, "ingest", str(folder), "--tenant", tenant
    )
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    await wait_until_searchable(cluster, tenant, "vacation days")
    return tenant


async def test_ingest_then_ask_answers_with_citations_and_meters_the_call(
    cluster: Cluster, tmp_path: Path
) -> None:
    tenant = await tenant_with_handbook(cluster, tmp_path)

    asked = await asyncio.to_thread(
        protomesh, cluster, "ask", "How many vacation days do employees accrue?", "--tenant", tenant
    )

    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert "twenty-five vacation days" in asked.stdout, asked.stdout
    assert "[1]" in asked.stdout, asked.stdout
    async with cluster.channel("cost") as channel:
        usage = await cost_grpc.CostServiceStub(channel).ListUsage(
            cost_pb.ListUsageRequest(page_size=50),
            metadata=bearer(cluster.token(tenant, user="dev")),
        )
    models = {record.usage.model for record in usage.usage_records}
    assert "extractive-v2" in models, usage
    assert all(record.attribution.task.startswith("tasks/") for record in usage.usage_records)


async def test_ask_about_nothing_says_so_instead_of_inventing(cluster: Cluster) -> None:
    tenant = "newcomer-empty-" + uuid.uuid4().hex[:8]

    asked = await asyncio.to_thread(
        protomesh, cluster, "ask", "What is the vacation policy?", "--tenant", tenant
    )

    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert "do not answer this question" in asked.stdout, asked.stdout
    assert "[1]" not in asked.stdout


async def test_search_and_cost_commands_show_the_tenants_data(
    cluster: Cluster, tmp_path: Path
) -> None:
    tenant = await tenant_with_handbook(cluster, tmp_path)

    found = await asyncio.to_thread(
        protomesh, cluster, "search", "vacation days carry over", "--tenant", tenant
    )
    asked = await asyncio.to_thread(
        protomesh, cluster, "ask", "When do unused vacation days expire?", "--tenant", tenant
    )
    report = await asyncio.to_thread(protomesh, cluster, "cost", "report", "--tenant", tenant)
    prices = await asyncio.to_thread(protomesh, cluster, "cost", "prices", "--tenant", tenant)
    budgets = await asyncio.to_thread(protomesh, cluster, "cost", "budgets", "--tenant", tenant)
    bad_mode = await asyncio.to_thread(
        protomesh, cluster, "search", "x", "--mode", "psychic", "--tenant", tenant
    )
    bad_group = await asyncio.to_thread(
        protomesh, cluster, "cost", "report", "--by", "weather", "--tenant", tenant
    )

    for done in (found, asked, report, prices, budgets):
        assert done.returncode == 0, [*done.args, done.stdout, done.stderr]
    assert "Vacation policy" in found.stdout, found.stdout
    assert "carry over" in found.stdout, found.stdout
    assert "extractive-v2" in report.stdout, report.stdout
    assert "gpt-4o-mini" in prices.stdout, prices.stdout
    assert bad_mode.returncode == 2, bad_mode.stderr
    assert "hybrid" in bad_mode.stderr, bad_mode.stderr
    assert bad_group.returncode == 2, bad_group.stderr
    assert "model" in bad_group.stderr, bad_group.stderr

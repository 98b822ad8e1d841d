"""`protomesh ingest` returns once what it wrote is searchable — by vector too —
and `protomesh search reindex` queues the tenant's rebuild and waits for it;
through the real CLI against the session's system."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from tests.cluster import Cluster
from tests.conftest import bearer
from tests.e2e.test_newcomer import protomesh

GARDENING = """# Growing tomatoes

Tomato plants need at least six hours of direct sunlight every day.
Water them deeply at the base twice a week and stake the stems as they grow.
"""

ROCKETS = """# Orbital launch checklist

Before lift-off the flight director polls every console for a go.
Propellant loading ends forty minutes before the engines ignite.
"""


def two_files(folder: Path) -> Path:
    folder.mkdir()
    (folder / "gardening.md").write_text(GARDENING)
    (folder / "rockets.md").write_text(ROCKETS)
    return folder


async def ingest_two_files(cluster: Cluster, folder: Path, tenant: str) -> str:
    """`protomesh ingest` (waiting, the default) of two Markdown files; its output."""
    folder = two_files(folder)
    done = await asyncio.to_thread(protomesh, cluster, "ingest", str(folder), "--tenant", tenant)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_right_after_ingest_returns_a_vector_search_finds_the_documents(
    cluster: Cluster, tmp_path: Path
) -> None:
    tenant = "ingest-wait-" + uuid.uuid4().hex[:8]

    output = await ingest_two_files(cluster, tmp_path / "docs", tenant)

    async with cluster.channel("search") as channel:
        found = await pb_grpc.SearchServiceStub(channel).Search(
            pb.SearchRequest(
                query="how much sun does a vegetable garden need", mode=pb.SEARCH_MODE_VECTOR
            ),
            metadata=bearer(cluster.token(tenant, user="dev")),
        )
    assert "keyword" in output, output  # a progress bar per phase
    assert "vector" in output, output
    assert not found.degraded, found.degraded_reason
    assert found.mode == pb.SEARCH_MODE_VECTOR
    assert {r.title for r in found.results} == {"Growing tomatoes", "Orbital launch checklist"}
    assert found.results[0].title == "Growing tomatoes", found


async def test_search_reindex_queues_the_tenants_chunks_and_waits_for_them(
    cluster: Cluster, tmp_path: Path
) -> None:
    tenant = "reindex-" + uuid.uuid4().hex[:8]
    await ingest_two_files(cluster, tmp_path / "docs", tenant)

    done = await asyncio.to_thread(protomesh, cluster, "search", "reindex", "--tenant", tenant)

    assert done.returncode == 0, done.stdout + done.stderr
    queued = re.search(r"queued (\d+) document\(s\) .* and (\d+) chunk\(s\)", done.stdout)
    assert queued, done.stdout
    assert int(queued.group(1)) + int(queued.group(2)) >= 2, done.stdout  # both documents
    async with cluster.channel("search") as channel:
        status = await pb_grpc.SearchServiceStub(channel).GetIndexStatus(
            pb.GetIndexStatusRequest(), metadata=bearer(cluster.token(tenant, user="dev"))
        )
    assert status.pending_embedding_count == 0, status
    assert status.rebuild_pending_document_count == 0, status

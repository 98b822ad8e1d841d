"""The README's own example, as a newcomer runs it: `protomesh ingest docs/` (and
the README), then `protomesh ask "how are tenants kept apart?"` answers with a
sentence from the docs that says how, with a verified citation — and a question
the docs do not cover is declined."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from pathlib import Path

from tests.cluster import Cluster
from tests.e2e.test_newcomer import protomesh

REPO = Path(__file__).resolve().parents[2]
# Words that only a sentence explaining tenant isolation would use.
ISOLATION = re.compile(r"row[- ]level security|tenant_isolation|app\.tenant_id|RLS", re.IGNORECASE)


async def ingest_the_docs(cluster: Cluster, folder: Path) -> str:
    tenant = "readme-" + uuid.uuid4().hex[:8]
    shutil.copytree(REPO / "docs", folder)
    shutil.copy(REPO / "README.md", folder / "README.md")
    done = await asyncio.to_thread(
        protomesh, cluster, "ingest", str(folder), "--label", "team=platform", "--tenant", tenant
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return tenant


async def test_the_readme_question_is_answered_from_the_docs_with_a_citation(
    cluster: Cluster, tmp_path: Path
) -> None:
    tenant = await ingest_the_docs(cluster, tmp_path / "docs")

    asked = await asyncio.to_thread(
        protomesh, cluster, "ask", "how are tenants kept apart?", "--tenant", tenant
    )
    declined = await asyncio.to_thread(
        protomesh, cluster, "ask", "How do I bake sourdough bread?", "--tenant", tenant
    )

    assert asked.returncode == 0, asked.stdout + asked.stderr
    answer = asked.stdout
    assert "do not answer this question" not in answer, answer
    assert re.search(r"\[\d+\]", answer), answer
    assert ISOLATION.search(answer), answer
    assert re.search(r"\b[1-9]\d* verified citations?", answer), answer
    assert declined.returncode == 0, declined.stdout + declined.stderr
    assert "do not answer this question" in declined.stdout, declined.stdout

"""`--output json` / `--json` against the session's real system: one JSON document
on stdout in the shapes docs/cli.md documents (the API's field names; lists as
{"items": [...], "nextPageToken": ...}), and names a script can pass back to
the next command (`tasks show NAME`)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app
from tests.cluster import Cluster

HANDBOOK = """# Vacation policy

Employees at Northwind accrue twenty-five vacation days per year.
Unused vacation days carry over until the end of March of the following year.
"""


def run(cluster: Cluster, *args: str) -> str:
    """Runs `protomesh ARGS` in this process; its stdout."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PROTOMESH_")}
    result = CliRunner().invoke(app, list(args), env={**cleared, **cluster.settings.to_env()})
    assert result.exit_code == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def protomesh(cluster: Cluster, *args: str) -> Any:
    """Runs `protomesh ARGS` in this process and parses its stdout as JSON."""
    return json.loads(run(cluster, *args))


def test_data_commands_print_the_documented_json(cluster: Cluster, tmp_path: Path) -> None:
    tenant = "json-" + uuid.uuid4().hex[:8]
    (tmp_path / "handbook.md").write_text(HANDBOOK)
    (tmp_path / "notes.bin").write_bytes(b"\x00")
    who = ("--tenant", tenant)

    ingested = protomesh(cluster, "ingest", str(tmp_path), "--output", "json", *who)
    found = protomesh(cluster, "search", "vacation days carry over", "--json", *who)
    asked = protomesh(cluster, "ask", "How many vacation days?", "--json", *who)
    listed = protomesh(cluster, "tasks", "list", "--json", *who)
    shown = protomesh(cluster, "tasks", "show", listed["items"][0]["name"], "--json", *who)
    completed = protomesh(cluster, "tasks", "list", "--state", "completed", "--json", *who)
    failed = protomesh(cluster, "tasks", "list", "--state", "failed", "--json", *who)
    report = protomesh(cluster, "cost", "report", "--by", "day", "--json", *who)
    budgets = protomesh(cluster, "cost", "budgets", "--json", *who)
    prices = protomesh(cluster, "cost", "prices", "--json", *who)
    reindex = protomesh(cluster, "search", "reindex", "--no-wait", "--json", *who)
    status = protomesh(cluster, "status", "--json", *who)
    watched = run(cluster, "tasks", "watch", asked["name"], "--json", *who)

    [created] = ingested["created"]
    assert created["path"].endswith("handbook.md")
    assert created["name"].startswith("documents/")
    assert ingested["skipped"] == [
        {"path": str(tmp_path / "notes.bin"), "reason": ingested["skipped"][0]["reason"]}
    ]
    assert ingested["sequence"] > 0
    assert ingested["wait"]["complete"] is True
    assert found["results"][0]["documentName"] == created["name"]
    assert found["results"][0]["chunkId"].startswith(created["name"] + "/chunks/")
    assert found["degraded"] is False  # defaults are printed: the keys are always there
    assert asked["name"].startswith("tasks/")
    assert asked["status"]["state"] == "TASK_STATE_COMPLETED"
    assert set(listed) == {"items", "nextPageToken"}
    assert listed["items"][0]["name"] == asked["name"]  # full names, usable as they are
    assert shown["name"] == asked["name"]
    assert [t["name"] for t in completed["items"]] == [asked["name"]]
    assert failed["items"] == []
    assert [row["key"] for row in report["rows"]]  # YYYY-MM-DD keys
    assert int(report["total"]["amountMicros"]) >= 0
    assert report["currencyCode"] == "USD"
    assert budgets == {"items": [], "nextPageToken": ""}
    assert "gpt-4o-mini" in {price["model"] for price in prices["items"]}
    assert reindex["wait"] is None
    assert "queuedChunkCount" in reindex
    assert status["healthy"] is True
    assert {c["name"] for c in status["components"]} >= {"document", "search", "task", "cost"}
    lines = [
        json.loads(line) for line in watched.splitlines()
    ]  # NDJSON: a WatchTask message a line
    assert lines[0]["task"]["name"] == asked["name"]
    assert all(set(line) == {"event"} for line in lines[1:])

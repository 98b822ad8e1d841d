"""With tracing on, one trace runs from the client through the server into PostgreSQL,
and the handler (and its logs) see the trace id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from services.platform.config import Settings
from tests.conftest import Mint

ROOT = Path(__file__).resolve().parents[2]


def test_one_trace_spans_client_server_and_database(settings: Settings, mint: Mint) -> None:
    env = {
        **os.environ,
        "PROBE_DSN": settings.database_url,
        "PROBE_DATA_DIR": str(settings.data_dir),
        "PROBE_TOKEN": mint("t1", scopes="documents:read"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.platform.tracing_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    spans = {s["name"]: s for s in report["spans"]}
    root = spans["client-root"]
    client = next(
        s for s in report["spans"] if s["kind"] == "CLIENT" and "GetDocument" in s["name"]
    )
    server = next(s for s in report["spans"] if s["kind"] == "SERVER")
    database = [s for s in report["spans"] if s["name"].startswith(("SELECT", "postgres"))]
    assert {root["trace_id"], client["trace_id"], server["trace_id"]} == {root["trace_id"]}
    assert client["parent"] == root["span_id"]
    assert server["parent"] == client["span_id"]
    assert database
    assert all(span["trace_id"] == root["trace_id"] for span in database)
    assert report["handler_trace_id"] == root["trace_id"]

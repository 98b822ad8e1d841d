"""With tracing on, one trace runs from the client through the server into PostgreSQL,
and the handler (and its logs) see the trace id. With it off (the default), nothing
of OpenTelemetry is loaded or installed, and the caller's trace id still reaches
the handler and its logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from services.platform.config import Settings
from tests.conftest import Mint

ROOT = Path(__file__).resolve().parents[2]


def probe(settings: Settings, mint: Mint, *args: str) -> dict[str, Any]:
    """Runs tracing_probe.py in a child process (tracing is process-global state)."""
    env = {
        **os.environ,
        "PROBE_DSN": settings.database_url,
        "PROBE_DATA_DIR": str(settings.data_dir),
        "PROBE_TOKEN": mint("t1", scopes="documents:read"),
    }
    env.pop("PROTOMESH_OTEL_EXPORTER", None)
    result = subprocess.run(
        [sys.executable, "-m", "tests.platform.tracing_probe", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_one_trace_spans_client_server_and_database(settings: Settings, mint: Mint) -> None:
    report = probe(settings, mint)
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


def test_tracing_off_installs_nothing_and_still_passes_the_trace_id_on(
    settings: Settings, mint: Mint
) -> None:
    report = probe(settings, mint, "off")
    assert report["configured"] is False
    assert report["sdk_or_instrumentation_loaded"] == []
    assert not report["grpc_server_patched"]
    assert not report["grpc_channel_patched"]
    assert not report["asyncpg_patched"]
    assert "OpenTelemetryMiddleware" not in report["gateway_middleware"]
    assert report["span_is_no_op"]
    assert report["current_traceparent"] == ""
    assert report["handler_trace_id"] == "0af7651916cd43dd8448eb211c80319c"

"""`protomesh bench`: runs bench scripts as `python -m bench.NAME`, collects the
JSON each prints, and writes the Markdown report (scripts here are stand-ins in
a scratch tree, so the test takes a second, not the benches' minutes)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from services.cli import bench

FAST = 'import json; print("loading..."); print(json.dumps({"grpc": {"p50_ms": 0.5, "ops": 10}, "ratio": 1.25, "ok": True}, indent=2))'
BROKEN = 'import sys; print("boom", file=sys.stderr); sys.exit(3)'


def scratch_tree(tmp_path: Path, scripts: dict[str, str]) -> Path:
    (tmp_path / "bench").mkdir()
    for name, code in scripts.items():
        (tmp_path / "bench" / f"{name}.py").write_text(code)
    return tmp_path


def test_headline_picks_latencies_rates_and_ratios_from_nested_json() -> None:
    result = {
        "grpc": {"by_operation": {"get": {"p50_ms": 1.5, "count": 9}}, "ops_per_s": 100.0},
        "ratios": {"search_p50_gateway_over_grpc": 1.4},
        "recall_at_10": 0.98,
        "note": "text is ignored",
        "flag": True,
    }

    assert bench.headline(result) == [
        ("grpc.by_operation.get.p50_ms", 1.5),
        ("grpc.ops_per_s", 100.0),
        ("ratios.search_p50_gateway_over_grpc", 1.4),
        ("recall_at_10", 0.98),
    ]


def test_a_run_writes_a_report_with_figures_and_failures(tmp_path: Path) -> None:
    root = scratch_tree(tmp_path, {"rpc_overhead": FAST, "documents": BROKEN})
    output = tmp_path / "report.md"
    console = Console(file=io.StringIO())

    outcomes = bench.run(console, [], True, output, 60, root)

    assert [(o.bench.name, o.result is not None) for o in outcomes] == [
        ("rpc_overhead", True),
        ("documents", False),
    ]
    text = output.read_text()
    assert "| rpc_overhead | `grpc.p50_ms` | 0.5 |" in text
    assert "| rpc_overhead | `ratio` | 1.25 |" in text
    assert "| documents | **failed** | exit 3: boom |" in text
    assert "python -m bench.rpc_overhead --calls 1000" in text


def test_unknown_bench_names_are_refused_with_the_choices(tmp_path: Path) -> None:
    root = scratch_tree(tmp_path, {"rpc_overhead": FAST})

    with pytest.raises(ValueError, match="choose from rpc_overhead"):
        bench.run(Console(file=io.StringIO()), ["nope"], True, tmp_path / "r.md", 60, root)


def test_every_listed_bench_exists_in_the_repository() -> None:
    assert [b.name for b in bench.available()] == [b.name for b in bench.BENCHES]

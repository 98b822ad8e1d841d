"""`protomesh bench`: runs bench scripts as `python -m bench.NAME`, shows their
phases, collects the JSON each prints, and writes the Markdown report with its
goal table and charts (scripts here are stand-ins in a scratch tree, so the test
takes seconds, not the benches' minutes)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from rich.console import Console

from cli import bench

FAST = (
    "import json, sys\n"
    'print("phase: warming up", file=sys.stderr, flush=True)\n'
    'print("loading...")\n'
    'print("phase: measuring", file=sys.stderr, flush=True)\n'
    'print(json.dumps({"grpc": {"p50_ms": 0.5, "p99_ms": 0.9, "ops_per_s": 10}, "ratio": 1.25,'
    ' "ok": True, "goals": {"ratio": {"value": 1.25, "max": 1.5, "met": True}}}, indent=2))'
)
BROKEN = 'import sys; print("phase: starting", file=sys.stderr); print("boom", file=sys.stderr); sys.exit(3)'
SLOW = "import time; time.sleep(30)"


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
    assert "| `grpc.p50_ms` | 0.5 |" in text
    assert "| `ratio` | 1.25 (goal ≤ 1.5: met) |" in text
    assert "| [rpc_overhead](#rpc_overhead) | `ratio` | 1.25 | ≤ 1.5 | met |" in text
    assert "| [documents](#documents) | the run | — | — | **failed** |" in text
    assert "exit 3: boom" in text
    assert "phase: starting" not in text
    assert "1 of 1 goals met." in text
    assert "python -m bench.rpc_overhead --calls 1000" in text
    # The chart sits beside the report and the report embeds it.
    assert (tmp_path / "report" / "rpc_overhead.png").read_bytes().startswith(b"\x89PNG")
    assert "![rpc_overhead](report/rpc_overhead.png)" in text
    assert not (tmp_path / "report" / "documents.png").exists()


def test_phases_reach_the_caller_and_a_slow_bench_times_out(tmp_path: Path) -> None:
    root = scratch_tree(tmp_path, {"rpc_overhead": FAST, "documents": SLOW})
    by_name = {b.name: b for b in bench.BENCHES}
    seen: list[str] = []

    done = bench.run_one(by_name["rpc_overhead"], True, 60, root, seen.append)
    late = bench.run_one(by_name["documents"], True, 1, root)

    assert seen == ["warming up", "measuring"]
    assert done.result is not None
    assert done.result["ratio"] == 1.25
    assert late.result is None
    assert late.error == "timed out after 1s"
    assert late.seconds < 10


def test_a_script_listed_twice_is_told_apart_by_its_slug(tmp_path: Path) -> None:
    slugs = [b.slug for b in bench.BENCHES]

    assert len(slugs) == len(set(slugs))
    assert [b.slug for b in bench.select(["search"])] == ["search", "search_end_to_end"]
    assert [b.slug for b in bench.select(["search_end_to_end"])] == ["search_end_to_end"]


def test_unknown_bench_names_are_refused_with_the_choices(tmp_path: Path) -> None:
    root = scratch_tree(tmp_path, {"rpc_overhead": FAST})

    with pytest.raises(ValueError, match="unknown bench nope; choose from rpc_overhead"):
        bench.run(Console(file=io.StringIO()), ["nope"], True, tmp_path / "r.md", 60, root)


def test_every_listed_bench_exists_in_the_repository() -> None:
    assert [b.name for b in bench.available()] == [b.name for b in bench.BENCHES]


ANSWER_QUALITY = {
    "benchmark": "answer_quality",
    "corpus": {"name": "pgdoc-qa", "seed": 7, "sections": 60, "answerable": 30},
    "top_k": 5,
    "metrics": {
        "answerable": {
            "questions": 30,
            "answered": 27,
            "answer_rate": 0.9,
            "answered_with_correct_citation": 0.8333,
            "support_not_located": 1,
        },
        "citations": {"verified_citations_of_answered": 40, "citation_precision": 0.875},
        "unanswerable": {"questions": 10, "abstained": 9, "abstention_rate": 0.9},
        "tasks_not_completed": 0,
    },
    "latency": {"questions": 10, "end_to_end": {"count": 10, "p50_ms": 812.5, "max_ms": 990.0}},
    "goals": {
        "answered_with_correct_citation": {"value": 0.8333, "min": 0.8, "met": True},
        "citation_precision": {"value": 0.875, "min": 0.9, "met": False},
        "abstention_rate": {"value": 0.9, "min": 0.9, "met": True},
    },
    "records": "/tmp/answer-quality-x/answers.jsonl",
}
VECTOR_CODEC = {
    "benchmark": "vector_codec",
    "rows": 5000,
    "results": {
        "binary": {"search": {"p50_ms": 1.2, "p95_ms": 1.9}, "encode_us_per_vector": 3.1},
        "text": {"search": {"p50_ms": 1.5, "p95_ms": 2.2}, "encode_us_per_vector": 80.2},
    },
    "binary_over_text": {"search_p50": 0.8, "store_32_p50": 0.61},
}


def test_answer_quality_and_vector_codec_figures_and_goals_reach_the_report() -> None:
    figures = dict(bench.headline(ANSWER_QUALITY))
    assert figures == {
        "metrics.answerable.answer_rate": 0.9,
        "metrics.answerable.answered_with_correct_citation": 0.8333,
        "metrics.citations.citation_precision": 0.875,
        "metrics.unanswerable.abstention_rate": 0.9,
        "latency.end_to_end.p50_ms": 812.5,
    }
    assert dict(bench.headline(VECTOR_CODEC)) == {
        "results.binary.search.p50_ms": 1.2,
        "results.binary.search.p95_ms": 1.9,
        "results.text.search.p50_ms": 1.5,
        "results.text.search.p95_ms": 2.2,
        "binary_over_text.search_p50": 0.8,
        "binary_over_text.store_32_p50": 0.61,
    }
    by_name = {b.name: b for b in bench.BENCHES}
    outcomes = [
        bench.Outcome(
            by_name["answer_quality"], by_name["answer_quality"].quick, 60, ANSWER_QUALITY
        ),
        bench.Outcome(by_name["vector_codec"], by_name["vector_codec"].quick, 9, VECTOR_CODEC),
    ]
    text = bench.report(outcomes, quick=True)
    row = "| `metrics.{}` | {} |".format
    assert row("answerable.answer_rate", "0.9") in text
    assert row("answerable.answered_with_correct_citation", "0.833 (goal ≥ 0.8: met)") in text
    assert row("citations.citation_precision", "0.875 (goal ≥ 0.9: **not met**)") in text
    assert row("unanswerable.abstention_rate", "0.9 (goal ≥ 0.9: met)") in text
    assert "| `goals." not in text  # each goal is noted on its figure, not repeated
    assert "| `binary_over_text.store_32_p50` | 0.61 |" in text
    assert "2 of 3 goals met." in text
    assert "python -m bench.vector_codec --rows 5000 --queries 100 --batches 50" in text


def test_a_goal_without_a_figure_gets_its_own_row() -> None:
    result = {"goals": {"abstention_rate": {"value": None, "min": 0.9, "met": False}}}
    outcome = bench.Outcome(bench.BENCHES[0], (), 1, result)

    text = bench.report([outcome], quick=True)

    assert "| `goals.abstention_rate` | n/a (goal ≥ 0.9: **not met**) |" in text
    assert "| `abstention_rate` | n/a | ≥ 0.9 | **not met** |" in text


def test_charts_show_percentiles_throughput_and_quality_and_skip_the_rest() -> None:
    from cli import bench_charts

    shown = bench_charts.panels(
        {
            "bare": {"p50_ms": 0.2, "p99_ms": 0.4, "throughput_rps": 4000.0},
            "chain": {"p50_ms": 0.3, "p95_ms": 0.35, "p99_ms": 0.6, "throughput_rps": 3000.0},
            "quality": {"recall_at_10": 0.97, "chunks": 20000},
            "goals": {"ratio": {"value": 1.5, "max": 1.25, "met": False}},
        }
    )

    assert list(shown.latency) == ["bare", "chain"]
    assert shown.latency["chain"] == (0.3, 0.35, 0.6)
    assert math.isnan(shown.latency["bare"][1])  # no p95 reported: no bar, not a made-up one
    assert shown.throughput == {"bare.throughput_rps": 4000.0, "chain.throughput_rps": 3000.0}
    assert shown.quality == {"quality.recall_at_10": 0.97}
    assert not bench_charts.panels({"note": "text", "count": 3})

"""bench.scale: counting a replica's calls from its /metrics text, the split between
replicas, the 2/1 ratios and the summary `protomesh bench` reports (no system runs)."""

from __future__ import annotations

import argparse

from bench.scale import OPERATIONS, compare, rpc_count, split, summarise
from cli import bench as bench_cli
from cli.status import parse_samples

METRICS = """\
# HELP protomesh_rpc_requests_total RPCs handled, by method and status code.
# TYPE protomesh_rpc_requests_total counter
protomesh_rpc_requests_total{service="protomesh.search.v1.SearchService",method="Search",code="OK"} 120.0
protomesh_rpc_requests_total{service="protomesh.search.v1.SearchService",method="Search",code="UNAVAILABLE"} 3.0
protomesh_rpc_requests_total{service="protomesh.search.v1.SearchService",method="GetIndexStatus",code="OK"} 7.0
"""


def test_rpc_count_sums_one_method_over_status_codes() -> None:
    samples = parse_samples(METRICS)

    assert rpc_count(samples, "Search") == 123
    assert rpc_count(samples, "GetIndexStatus") == 7
    assert rpc_count(samples, "CreateTask") == 0


def test_split_gives_each_replica_its_calls_between_scrapes_and_its_share() -> None:
    assert split([10.0, 4.0], [310.0, 304.0]) == {"calls": [300, 300], "shares": [0.5, 0.5]}
    assert split([0.0, 0.0], [600.0, 400.0]) == {"calls": [600, 400], "shares": [0.6, 0.4]}


def test_split_of_no_calls_has_zero_shares() -> None:
    assert split([5.0], [5.0]) == {"calls": [0], "shares": [0.0]}


def test_compare_divides_two_replicas_by_one_and_skips_missing_figures() -> None:
    one = {"calls_per_s": 500.0, "p50_ms": 20.0, "p99_ms": None}
    two = {"calls_per_s": 550.0, "p50_ms": 18.0, "p99_ms": 90.0}

    assert compare(one, two) == {
        "throughput_ratio_2_over_1": 1.1,
        "p50_ratio_2_over_1": 0.9,
        "p99_ratio_2_over_1": None,
    }


def measured(calls_per_s: float, shares: list[float]) -> dict[str, object]:
    return {
        "calls": 100,
        "calls_per_s": calls_per_s,
        "p50_ms": 10.0,
        "p99_ms": 40.0,
        "errors": {},
        "split": {"calls": [round(100 * s) for s in shares], "shares": shares},
    }


def test_summary_reports_ratios_and_the_smallest_share_against_its_goal() -> None:
    args = argparse.Namespace(calls=100, seconds=1.0, concurrency=4, documents=3)
    by_replicas = {
        1: {"seed_seconds": 1.0, "load_average_1m": 0.5}
        | {op: measured(100.0, [1.0]) for op in OPERATIONS},
        2: {"seed_seconds": 1.5, "load_average_1m": 0.7}
        | {op: measured(95.0, [0.5, 0.5]) for op in OPERATIONS},
    }
    by_replicas[2]["create_task"] = measured(95.0, [0.65, 0.35])

    summary = summarise(by_replicas, args)

    assert summary["operations"]["search_keyword"]["throughput_ratio_2_over_1"] == 0.95
    assert summary["goals"]["smallest_replica_share"] == {"value": 0.35, "min": 0.4, "met": False}
    figures = dict(bench_cli.headline(summary))
    assert figures["operations.get_document_rest.replicas_2.calls_per_s"] == 95.0
    assert figures["operations.create_task.throughput_ratio_2_over_1"] == 0.95
    assert "scale" in {b.name for b in bench_cli.BENCHES}

"""`protomesh bench`: runs the `bench/` scripts (each prints one JSON object) and
writes a Markdown report — the headline figures of every run in one table, the
raw JSON below it — that the README links to.

The figures come from the JSON itself (every numeric leaf whose key names a
latency percentile, a rate, a ratio or a quality measure), so a script that
reports something new shows up without touching this module. A `goals` section
of {name: {value, min or max, met}} (bench/answer_quality) marks the figure of
that name with its goal and whether it was met."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

REPO_ROOT = Path(__file__).resolve().parents[1]
HEADLINE = re.compile(
    r"(p50|p95|p99|per_s|qps|ratio|over_|recall|overlap|ndcg|overspend|error_rate|speedup"
    r"|_rate$|precision|correct_citation)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Bench:
    """One script under bench/ and the arguments for a full and a quick run."""

    name: str
    about: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()


BENCHES = (
    Bench("rpc_overhead", "interceptor chain vs bare grpc.aio", (), ("--calls", "1000")),
    Bench(
        "documents",
        "DocumentService writes, reads, change feed",
        (),
        ("--docs", "1000", "--gets", "500", "--watch", "100"),
    ),
    Bench(
        "search",
        "hybrid search at 100k chunks vs reference SQL",
        ("--out", "bench/results/search.json"),
        ("--chunks", "20000", "--out", "bench/results/search.json"),
    ),
    Bench(
        "search",
        "end to end: protomesh up, real MiniLM query embedding, ~2.8k chunks of real text",
        ("--end-to-end",),
        ("--end-to-end",),
    ),
    Bench("tasks", "task queue throughput and start latency", (), ("--tasks", "500")),
    Bench("cost", "reserve/commit pairs and overspend", (), ("--pairs", "600")),
    Bench(
        "gateway",
        "REST through the gateway vs direct gRPC",
        (),
        ("--calls", "500", "--seconds", "2"),
    ),
    Bench(
        "search_quality",
        "nDCG@10 / recall@10 of keyword, vector, hybrid",
        (),
        ("--documents", "300", "--queries", "100"),
    ),
    Bench(
        "ingest",
        "write → searchable latency, indexer ingest vs the raw embedder",
        (),
        ("--quick",),
    ),
    Bench(
        "noisy_tenant",
        "a quiet tenant's latency while another floods",
        (),
        ("--calls", "300", "--flooders", "16"),
    ),
    Bench(
        "load",
        "mixed load against protomesh up",
        (),
        ("--ops", "600", "--seconds", "10", "--documents", "60"),
    ),
    Bench(
        "scale",
        "Search, GetDocument (gRPC, REST), CreateTask with 1 vs 2 replicas per service",
        (),
        ("--quick",),
    ),
    Bench(
        "answer_quality",
        "rag.answer answer rate, citation precision, abstention (pgdoc-qa)",
        (),
        (
            "--sections",
            "60",
            "--answerable",
            "30",
            "--unanswerable",
            "10",
            "--latency-questions",
            "10",
        ),
    ),
    Bench(
        "vector_codec",
        "pgvector binary codec vs text literals",
        (),
        ("--rows", "5000", "--queries", "100", "--batches", "50"),
    ),
)


@dataclass
class Outcome:
    bench: Bench
    args: tuple[str, ...]
    seconds: float
    result: dict[str, Any] | None
    error: str = ""


def available(root: Path = REPO_ROOT) -> list[Bench]:
    """The benches whose scripts exist (the CLI may run from an installed package)."""
    return [b for b in BENCHES if (root / "bench" / f"{b.name}.py").exists()]


def headline(result: dict[str, Any]) -> list[tuple[str, float]]:
    """(dotted path, value) for every headline figure in a result."""
    return [
        (path, value) for path, value in _leaves(result) if HEADLINE.search(path.split(".")[-1])
    ]


def goal_notes(result: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """Goal name → (its value, e.g. "goal ≥ 0.9: met") for a `goals` section whose
    entries are {value, min or max, met}; other shapes of goals are left alone."""
    goals = result.get("goals")
    notes: dict[str, tuple[Any, str]] = {}
    if not isinstance(goals, dict):
        return notes
    for name, goal in goals.items():
        if not isinstance(goal, dict) or not isinstance(goal.get("met"), bool):
            continue
        bound = next(
            (
                f" {sign} {_number(goal[key])}"
                for key, sign in (("min", "≥"), ("max", "≤"))
                if isinstance(goal.get(key), int | float)
            ),
            "",
        )
        met = "met" if goal["met"] else "**not met**"
        notes[name] = (goal.get("value"), f"goal{bound}: {met}")
    return notes


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, bool):
        return
    elif isinstance(value, int | float):
        yield prefix, value


def run_one(bench: Bench, quick: bool, timeout_seconds: float, root: Path = REPO_ROOT) -> Outcome:
    args = bench.quick if quick else bench.full
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{bench.name}", *args],
            cwd=root,
            env={**os.environ, "PROTOMESH_LOG_LEVEL": "warning"},
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        seconds = time.perf_counter() - started
        return Outcome(bench, args, seconds, None, f"timed out after {timeout_seconds:g}s")
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        return Outcome(bench, args, seconds, None, f"exit {done.returncode}: {tail}")
    try:
        return Outcome(bench, args, seconds, _last_json_object(done.stdout))
    except ValueError as exc:
        return Outcome(bench, args, seconds, None, str(exc))


def _last_json_object(text: str) -> dict[str, Any]:
    """The JSON object a script printed last (scripts may log lines before it)."""
    start = text.rfind("\n{")
    candidate = text[start + 1 :] if start >= 0 else text
    try:
        parsed = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise ValueError(f"no JSON object in the output ({exc})") from None
    if not isinstance(parsed, dict):
        raise ValueError("the output is JSON but not an object")
    return parsed


def report(outcomes: Sequence[Outcome], quick: bool) -> str:
    """The Markdown report."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# protomesh benchmarks",
        "",
        f"Measured {now} by `protomesh bench{' --quick' if quick else ''}` on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU(s), Python "
        f"{platform.python_version()}. Every figure comes from one run of the script in "
        "`bench/` named in the first column; ratios compare with a baseline measured in the "
        "same run. Re-run with `make bench` (or `protomesh bench --only NAME`).",
        "",
        "| bench | figure | value |",
        "| --- | --- | ---: |",
    ]
    for outcome in outcomes:
        if outcome.result is None:
            lines.append(f"| {outcome.bench.name} | **failed** | {outcome.error.splitlines()[0]} |")
            continue
        notes = goal_notes(outcome.result)
        for path, value in headline(outcome.result):
            leaf = path.split(".")[-1]
            note = f" ({notes.pop(leaf)[1]})" if leaf in notes else ""
            lines.append(f"| {outcome.bench.name} | `{path}` | {_number(value)}{note} |")
        for name, (value, note) in notes.items():  # goals whose figure is not a headline
            shown = _number(value) if isinstance(value, int | float) else "n/a"
            lines.append(f"| {outcome.bench.name} | `goals.{name}` | {shown} ({note}) |")
    lines += ["", "## Runs", ""]
    for outcome in outcomes:
        lines += [f"### {outcome.bench.name}: {outcome.bench.about}", ""]
        command = " ".join(("python -m", f"bench.{outcome.bench.name}", *outcome.args))
        lines += [f"`{command}` — {outcome.seconds:.0f} s", ""]
        if outcome.result is None:
            lines += ["```", outcome.error, "```", ""]
        else:
            lines += [
                "<details><summary>JSON</summary>",
                "",
                "```json",
                json.dumps(outcome.result, indent=2),
                "```",
                "",
                "</details>",
                "",
            ]
    return "\n".join(lines)


def _number(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def run(
    console: Console,
    only: Sequence[str],
    quick: bool,
    output: Path,
    timeout_seconds: float,
    root: Path = REPO_ROOT,
) -> list[Outcome]:
    """Runs the selected benches one after another (never in parallel: they
    measure the machine) and writes the report; returns the outcomes."""
    benches = available(root)
    unknown = sorted(set(only) - {b.name for b in benches})
    if unknown:
        raise ValueError(
            f"unknown bench {', '.join(unknown)}; choose from {', '.join(b.name for b in benches)}"
        )
    selected = [b for b in benches if not only or b.name in only]
    outcomes = []
    for bench in selected:
        with console.status(f"bench {bench.name}: {bench.about}..."):
            outcome = run_one(bench, quick, timeout_seconds, root)
        mark = (
            "[green]ok[/green]"
            if outcome.result is not None
            else f"[red]{outcome.error.splitlines()[0]}[/red]"
        )
        console.print(f"{bench.name:<14} {outcome.seconds:6.0f} s  {mark}")
        outcomes.append(outcome)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report(outcomes, quick))
    console.print(f"report: {output}")
    return outcomes

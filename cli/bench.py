"""`protomesh bench`: runs the `bench/` scripts one after another (each prints one
JSON object, and `phase: …` lines on stderr while it works), shows which bench and
which phase is running, and writes the Markdown report with a chart per bench
(cli/bench_report.py, cli/bench_charts.py) that the README links to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cli import bench_charts
from cli.bench_report import Goal, goals, headline, report

REPO_ROOT = Path(__file__).resolve().parents[1]
PHASE_PREFIX = "phase: "  # bench/goals.py writes it; the scripts' other stderr is kept for errors
ERROR_TAIL = 5

__all__ = ["BENCHES", "Bench", "Goal", "Outcome", "available", "goals", "headline", "report", "run"]


@dataclass(frozen=True)
class Bench:
    """One script under bench/ and the arguments for a full and a quick run."""

    name: str
    about: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    key: str = ""  # when one script is listed twice: what tells the runs apart

    @property
    def slug(self) -> str:
        """The bench's name in the report, its anchor and its chart's file name."""
        return self.key or self.name


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
        key="search_end_to_end",
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


def run_one(
    bench: Bench,
    quick: bool,
    timeout_seconds: float,
    root: Path = REPO_ROOT,
    on_phase: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """Runs one script to its end (or its timeout), reporting each `phase:` line it
    writes; the outcome holds the JSON it printed last, or why there is none."""
    args = bench.quick if quick else bench.full
    started = time.perf_counter()
    tail: deque[str] = deque(maxlen=ERROR_TAIL)
    with tempfile.TemporaryFile("w+") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", f"bench.{bench.name}", *args],
            cwd=root,
            env={**os.environ, "PROTOMESH_LOG_LEVEL": "warning"},
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        timed_out = threading.Event()

        def give_up() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout_seconds, give_up)
        timer.start()
        try:
            assert process.stderr is not None
            for line in process.stderr:
                text = line.rstrip()
                if text.startswith(PHASE_PREFIX):
                    on_phase(text.removeprefix(PHASE_PREFIX))
                elif text:
                    tail.append(text)
            returncode = process.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        if timed_out.is_set():
            return Outcome(bench, args, seconds, None, f"timed out after {timeout_seconds:g}s")
        if returncode != 0:
            return Outcome(bench, args, seconds, None, f"exit {returncode}: " + "\n".join(tail))
        stdout.seek(0)
        try:
            return Outcome(bench, args, seconds, _last_json_object(stdout.read()))
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


def select(only: Sequence[str], root: Path = REPO_ROOT) -> list[Bench]:
    """The benches `--only` names (a script's name or a run's slug), all if none."""
    benches = available(root)
    known = {b.name for b in benches} | {b.slug for b in benches}
    unknown = sorted(set(only) - known)
    if unknown:
        raise ValueError(
            f"unknown bench {', '.join(unknown)}; choose from {', '.join(sorted(known))}"
        )
    return [b for b in benches if not only or b.name in only or b.slug in only]


def run(
    console: Console,
    only: Sequence[str],
    quick: bool,
    output: Path,
    timeout_seconds: float,
    root: Path = REPO_ROOT,
) -> list[Outcome]:
    """Runs the selected benches one after another (never in parallel: they
    measure the machine), showing each one's phase as it goes and its goals when
    it ends, then writes the report and its charts; returns the outcomes."""
    selected = select(only, root)
    outcomes = []
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("[dim]{task.fields[phase]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        for number, bench in enumerate(selected, 1):
            task = progress.add_task(f"[{number}/{len(selected)}] {bench.slug}", phase="starting")

            def show(phase: str, task: Any = task) -> None:
                progress.update(task, phase=phase)

            outcome = run_one(bench, quick, timeout_seconds, root, show)
            progress.remove_task(task)
            _print_outcome(console, number, len(selected), outcome)
            outcomes.append(outcome)
    charts = write_charts(outcomes, output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report(outcomes, quick, charts))
    console.print(
        f"report: {output}" + (f" (charts in {output.with_suffix('')})" if charts else "")
    )
    return outcomes


def _print_outcome(console: Console, number: int, total: int, outcome: Outcome) -> None:
    head = f"[{number}/{total}] {outcome.bench.slug:<18} {outcome.seconds:6.0f} s  "
    if outcome.result is None:
        console.print(head + f"[red]failed[/red]: {outcome.error.splitlines()[0]}", markup=True)
        return
    console.print(head + "[green]ok[/green]")
    for goal in goals(outcome.result):
        mark = "[green]✓[/green]" if goal.met else "[red]✗[/red]"
        value = "n/a" if goal.value is None else f"{goal.value:g}"
        console.print(f"    {mark} {goal.name} = {value} (goal {goal.bound or '—'})")


def write_charts(outcomes: Sequence[Outcome], output: Path) -> dict[str, Path]:
    """One PNG per bench with something to chart, in a directory named after the
    report (docs/benchmarks/ for docs/benchmarks.md); slug → path relative to the
    report's directory."""
    directory = output.with_suffix("")
    charts = {}
    for outcome in outcomes:
        if outcome.result is None:
            continue
        path = directory / f"{outcome.bench.slug}.png"
        if bench_charts.draw(f"{outcome.bench.slug}: {outcome.bench.about}", outcome.result, path):
            charts[outcome.bench.slug] = path.relative_to(output.parent)
    return charts

"""The Markdown report `protomesh bench` writes: every goal with its verdict in one
table, then per bench its command, chart, headline figures and raw JSON.

The figures come from the JSON itself (every numeric leaf whose key names a
latency percentile, a rate, a ratio or a quality measure), so a script that
reports something new shows up without touching this module. Goals are the
entries of a result's `goals` section in the {value, min or max, met} shape
(bench/goals.py); each is noted beside its figure as well."""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cli.bench import Outcome

HEADLINE = re.compile(
    r"(p50|p95|p99|per_s|per_second|qps|ratio|over_|recall|overlap|ndcg|overspend|error_rate"
    r"|speedup|_rate$|precision|correct_citation|share)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Goal:
    """One goal of one bench, as its script judged it."""

    name: str
    value: float | None
    bound: str  # "≤ 1.25", "≥ 0.8" or "" when the script gave no bound
    met: bool

    @property
    def verdict(self) -> str:
        return "met" if self.met else "**not met**"

    @property
    def note(self) -> str:
        return f"goal {self.bound}: {self.verdict}" if self.bound else f"goal: {self.verdict}"


def headline(result: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(dotted path, value) for every headline figure in a result, `goals` aside."""
    return [
        (path, value)
        for path, value in leaves(result)
        if HEADLINE.search(path.split(".")[-1]) and not path.startswith("goals.")
    ]


def goals(result: Mapping[str, Any]) -> list[Goal]:
    """The result's goals in the {value, min or max, met} shape; others are ignored."""
    found = result.get("goals")
    if not isinstance(found, Mapping):
        return []
    listed = []
    for name, goal in found.items():
        if not isinstance(goal, Mapping) or not isinstance(goal.get("met"), bool):
            continue
        bound = next(
            (
                f"{sign} {number(goal[key])}"
                for key, sign in (("max", "≤"), ("min", "≥"))
                if isinstance(goal.get(key), int | float)
            ),
            "",
        )
        value = goal.get("value")
        shown = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        listed.append(Goal(str(name), shown, bound, goal["met"]))
    return listed


def leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(dotted path, number) for every numeric leaf of nested dicts (lists and
    booleans are not figures)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, bool):
        return
    elif isinstance(value, int | float):
        yield prefix, value


def number(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def report(outcomes: Sequence[Outcome], quick: bool, charts: Mapping[str, Path] = {}) -> str:
    """The Markdown report; `charts` maps a bench's slug to its chart, relative to
    the report's directory."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# protomesh benchmarks",
        "",
        f"Measured {now} by `protomesh bench{' --quick' if quick else ''}` on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU(s), Python "
        f"{platform.python_version()}. Every figure comes from one run of the script in "
        "`bench/` named in its section; ratios compare with a baseline measured in the "
        "same run, since machines are noisy. Re-run with `make bench` (or `protomesh bench "
        "--only NAME`); this file and the charts beside it are rewritten each time. How the "
        "hot paths were profiled and what the remaining cost consists of: "
        "[profiles.md](profiles.md).",
        "",
        *_goal_table(outcomes),
    ]
    for outcome in outcomes:
        lines += ["", *_section(outcome, charts.get(outcome.bench.slug))]
    return "\n".join(lines) + "\n"


def _goal_table(outcomes: Sequence[Outcome]) -> list[str]:
    rows = [
        "## Goals",
        "",
        "| bench | goal | measured | target | |",
        "| --- | --- | ---: | --- | --- |",
    ]
    met = total = 0
    for outcome in outcomes:
        slug = outcome.bench.slug
        if outcome.result is None:
            rows.append(f"| [{slug}](#{slug}) | the run | — | — | **failed** |")
            continue
        for goal in goals(outcome.result):
            total += 1
            met += goal.met
            shown = "n/a" if goal.value is None else number(goal.value)
            rows.append(
                f"| [{slug}](#{slug}) | `{goal.name}` | {shown} | {goal.bound or '—'} | "
                f"{goal.verdict} |"
            )
    return [*rows, "", f"{met} of {total} goals met."]


def _section(outcome: Outcome, chart: Path | None) -> list[str]:
    bench = outcome.bench
    command = " ".join(("python -m", f"bench.{bench.name}", *outcome.args))
    lines = [
        f'<a id="{bench.slug}"></a>',
        "",
        f"## {bench.slug}: {bench.about}",
        "",
        f"`{command}` — {outcome.seconds:.0f} s",
        "",
    ]
    if outcome.result is None:
        return [*lines, "**The run failed:**", "", "```", outcome.error, "```"]
    if chart is not None:
        lines += [f"![{bench.slug}]({chart.as_posix()})", ""]
    notes = {goal.name: goal for goal in goals(outcome.result)}
    lines += ["| figure | value |", "| --- | ---: |"]
    for path, value in headline(outcome.result):
        goal = notes.pop(path, None) or notes.pop(path.split(".")[-1], None)
        note = f" ({goal.note})" if goal else ""
        lines.append(f"| `{path}` | {number(value)}{note} |")
    for goal in notes.values():  # goals whose figure is not a headline
        shown = "n/a" if goal.value is None else number(goal.value)
        lines.append(f"| `goals.{goal.name}` | {shown} ({goal.note}) |")
    return [
        *lines,
        "",
        "<details><summary>JSON</summary>",
        "",
        "```json",
        json.dumps(outcome.result, indent=2, ensure_ascii=False),
        "```",
        "",
        "</details>",
    ]

"""What every bench reports the same way: its goals, and which phase it is in.

A goal is `{"value": v, "min" or "max": bound, "met": bool}` under the result's
`goals` key; `protomesh bench` prints each beside its figure and in the report's
goal table. `phase` writes one `phase: …` line to stderr, which `protomesh bench`
shows as the bench's progress while it runs."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

PHASE_PREFIX = "phase: "


def at_most(value: float | None, bound: float) -> dict[str, Any]:
    """A goal met when `value` ≤ `bound` (never met without a value)."""
    return {"value": value, "max": bound, "met": value is not None and value <= bound}


def at_least(value: float | None, bound: float) -> dict[str, Any]:
    """A goal met when `value` ≥ `bound` (never met without a value)."""
    return {"value": value, "min": bound, "met": value is not None and value >= bound}


def phase(text: str) -> None:
    """Tells whoever runs the bench what it is doing now."""
    print(f"{PHASE_PREFIX}{text}", file=sys.stderr, flush=True)


def print_goals(goals: Mapping[str, Mapping[str, Any]]) -> None:
    """One line per goal on stderr: `name = value (goal ≤ bound: PASS|FAIL)`."""
    for name, goal in goals.items():
        sign, bound = ("≤", goal["max"]) if "max" in goal else ("≥", goal.get("min"))
        verdict = "PASS" if goal.get("met") else "FAIL"
        print(f"{name} = {goal.get('value')} (goal {sign} {bound}: {verdict})", file=sys.stderr)

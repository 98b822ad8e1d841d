"""`noop`: does nothing (benchmarks, tests). Input `sleep_seconds` waits
(cancellably), `fail_times` fails the first n attempts and `progress_steps`
reports n progress events."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from services.task.execution import TaskContext


class Noop:
    type = "noop"
    timeout_seconds = 60.0
    max_attempts = 3
    scopes: frozenset[str] = frozenset()

    def validate(self, input: Mapping[str, Any]) -> list[str]:
        problems = []
        sleep = input.get("sleep_seconds", 0)
        if not isinstance(sleep, int | float) or not 0 <= sleep <= 3600:
            problems.append("sleep_seconds must be a number from 0 to 3600")
        fail = input.get("fail_times", 0)
        if not isinstance(fail, int | float) or fail < 0:
            problems.append("fail_times must be a non-negative number")
        steps = input.get("progress_steps", 0)
        if not isinstance(steps, int | float) or not 0 <= steps <= 10_000:
            problems.append("progress_steps must be from 0 to 10000")
        return problems

    async def run(self, ctx: TaskContext) -> str:
        if ctx.attempt <= int(ctx.input.get("fail_times", 0)):
            raise RuntimeError(f"planned failure on attempt {ctx.attempt}")
        steps = int(ctx.input.get("progress_steps", 0))
        for step in range(steps):
            await ctx.progress(f"step {step + 1}", 100 * (step + 1) // steps)
        sleep = float(ctx.input.get("sleep_seconds", 0))
        if sleep:
            await ctx.progress("sleep", 0)
            await ctx.call(asyncio.sleep(sleep))
        ctx.check_cancel()
        return "done"

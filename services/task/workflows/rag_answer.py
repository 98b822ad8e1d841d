"""`rag.answer` {question, filters, top_k}: search (hybrid) → rank/dedupe →
generate a grounded answer (metered, streamed) → verify citations → artifact."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.task.execution import TaskContext
from services.task.generation import Prompt
from services.task.workflows import retrieval

MAX_TOP_K = 20


class RagAnswer:
    type = "rag.answer"
    timeout_seconds = 120.0
    max_attempts = 3
    scopes = frozenset({"search:read", "cost:write"})

    def validate(self, input: Mapping[str, Any]) -> list[str]:
        problems = []
        question = input.get("question")
        if not isinstance(question, str) or not question.strip():
            problems.append("question is required")
        elif len(question) > 1024:
            problems.append("question must be at most 1024 characters")
        top_k = input.get("top_k", 5)
        if not isinstance(top_k, int | float) or not 1 <= top_k <= MAX_TOP_K:
            problems.append(f"top_k must be from 1 to {MAX_TOP_K}")
        problems.extend(retrieval.validate_filters(input.get("filters")))
        return problems

    async def run(self, ctx: TaskContext) -> str:
        question = str(ctx.input["question"]).strip()
        top_k = int(ctx.input.get("top_k", 5))
        await ctx.progress("search", 10)
        results = await retrieval.search(ctx, question, top_k, ctx.input.get("filters"))
        await ctx.progress("rank", 30)
        sources = retrieval.rank(results, top_k)
        await ctx.log(f"{len(results)} results, {len(sources)} sources after dedupe")
        await ctx.progress("generate", 40)
        generation = await ctx.generate(Prompt(question, sources))
        await ctx.progress("verify", 90)
        artifact, report = retrieval.answer_artifact(
            "answer",
            "answer",
            generation.text,
            sources,
            generation.model,
            generation.usage.estimated,
        )
        await ctx.put_artifact(artifact)
        if report["unsupported"]:
            await ctx.log(f"{len(report['unsupported'])} unsupported citations dropped", "warning")
        return f"answered with {report['supported']} verified citations"

"""`research` {topic, depth, confirm_plan, top_k}: plan sub-questions → (optionally
wait in INPUT_REQUIRED for the caller to confirm or edit the plan) → search
each with progress → synthesize a sectioned report with citations → verify.

Every section of the report answers its sub-question from the sources, with
citations; a sub-question the sources do not answer gets no section (no
uncited prose) and is listed under "Not covered by the sources" instead; an
answer that answers several sub-questions is one section headed by all of them.

The plan is deterministic (question templates over the topic), so a re-run
after a retry or a pause produces the same plan; it is kept in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.task.execution import Canceled, TaskContext
from services.task.generation import Prompt, Source
from services.task.workflows import retrieval

TEMPLATES = (
    "What is {topic}?",
    "How does {topic} work?",
    "What are the benefits of {topic}?",
    "What are the limitations or risks of {topic}?",
    "How is {topic} used in practice?",
    "How does {topic} compare with alternatives?",
)


def plan(topic: str, depth: int) -> list[str]:
    return [t.format(topic=topic) for t in TEMPLATES[: depth + 1]]


class Research:
    type = "research"
    timeout_seconds = 600.0
    max_attempts = 3
    scopes = frozenset({"search:read", "cost:write"})

    def validate(self, input: Mapping[str, Any]) -> list[str]:
        problems = []
        topic = input.get("topic")
        if not isinstance(topic, str) or not topic.strip() or len(topic) > 512:
            problems.append("topic is required (at most 512 characters)")
        depth = input.get("depth", 2)
        if not isinstance(depth, int | float) or not 1 <= depth <= len(TEMPLATES) - 1:
            problems.append(f"depth must be from 1 to {len(TEMPLATES) - 1}")
        if not isinstance(input.get("confirm_plan", False), bool):
            problems.append("confirm_plan must be a boolean")
        problems.extend(retrieval.validate_filters(input.get("filters")))
        return problems

    async def _confirmed_plan(self, ctx: TaskContext) -> list[str]:
        topic = str(ctx.input["topic"]).strip()
        current = list(ctx.checkpoint.get("plan") or plan(topic, int(ctx.input.get("depth", 2))))
        if not ctx.input.get("confirm_plan") or ctx.checkpoint.get("approved"):
            return current
        answer = ctx.latest_input() if ctx.checkpoint.get("asked") else None
        if answer is None:
            await ctx.save_checkpoint({"plan": current, "asked": True})
            ctx.need_input(
                'confirm the research plan: send {"approve": true}, or '
                '{"sub_questions": [...]} to change it, or {"approve": false} to stop. '
                "Plan: " + " | ".join(current)
            )
        if answer.get("approve") is False:
            raise Canceled("research plan rejected")
        edited = answer.get("sub_questions")
        if isinstance(edited, list) and edited and all(isinstance(q, str) for q in edited):
            current = [q[:1024] for q in edited[:10]]
        await ctx.save_checkpoint({"plan": current, "asked": True, "approved": True})
        return current

    async def run(self, ctx: TaskContext) -> str:
        questions = await self._confirmed_plan(ctx)
        await ctx.log("plan: " + " | ".join(questions))
        top_k = int(ctx.input.get("top_k", 3))
        sections: list[tuple[str, list[Source]]] = []
        everything: list[Source] = []
        by_chunk: dict[str, Source] = {}
        for i, question in enumerate(questions):
            await ctx.progress(f"search {i + 1}/{len(questions)}", 5 + 45 * i // len(questions))
            results = await retrieval.search(ctx, question, top_k, ctx.input.get("filters"))
            section_sources = []
            for source in retrieval.rank(results, top_k):
                known = by_chunk.get(source.chunk_id)
                if known is None:
                    known = Source(
                        len(everything) + 1,
                        source.document,
                        source.chunk_id,
                        source.title,
                        source.text,
                    )
                    by_chunk[source.chunk_id] = known
                    everything.append(known)
                section_sources.append(known)
            sections.append((question, section_sources))
        answers: dict[str, list[str]] = {}  # answer text → the sub-questions it answers
        uncovered: list[str] = []
        model, estimated = ctx.generator.model, False
        for i, (question, sources) in enumerate(sections):
            await ctx.progress(f"synthesize {i + 1}/{len(sections)}", 50 + 40 * i // len(sections))
            await ctx.output(f"\n\n## {question}\n\n")
            generation = await ctx.generate(Prompt(question, sources), max_output_tokens=400)
            model, estimated = generation.model, estimated or generation.usage.estimated
            if retrieval.cites_a_source(generation.text):
                answers.setdefault(generation.text, []).append(question)
            else:
                uncovered.append(question)
        # The same answer to several sub-questions is one section headed by all of them.
        parts = [f"# Research: {ctx.input['topic']}"]
        parts += [f"## {' / '.join(asked)}\n\n{text}" for text, asked in answers.items()]
        if uncovered:
            gaps = "\n".join(f"- {question}" for question in uncovered)
            parts.append(f"## Not covered by the sources\n\n{gaps}")
        await ctx.progress("verify", 95)
        artifact, report = retrieval.answer_artifact(
            "report", "report", "\n\n".join(parts), everything, model, estimated
        )
        await ctx.put_artifact(artifact)
        return (
            f"report on {len(questions) - len(uncovered)} of {len(questions)} sub-questions, "
            f"{report['supported']} of {report['citations']} citations verified"
        )

"""bench/answer_quality.py's scoring: reading a rag.answer artifact, judging its
citations against the support sentence, and the summary figures (pure, no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.answer_quality import (
    ABSTENTION,
    COMPLETED,
    NOT_COVERED,
    Citation,
    Outcome,
    chunks_containing,
    goals,
    is_abstention,
    judge,
    judge_research,
    outcome_of,
    quote_matches_support,
    report_sections,
    research_figures,
    results_dir,
    spread,
    summarise,
    summarise_research,
)
from protomesh.task.v1 import task_service_pb2 as pb
from services.task.generation import Source
from services.task.workflows.retrieval import answer_artifact

SUPPORT = "The auto_explain module provides a means for logging execution plans of slow statements."
DOC = "documents/auto-explain"
OTHER = "documents/other"
SOURCES = [
    Source(
        1, DOC, "c-1", "auto_explain", "Auto Explain\n" + SUPPORT + " It is loaded per session."
    ),
    Source(2, OTHER, "c-2", "Other", "Plans are printed by EXPLAIN for one statement."),
]


def finished(text: str, state: int = pb.TASK_STATE_COMPLETED) -> pb.Task:
    artifact, _ = answer_artifact("answer", "answer", text, SOURCES, "extractive-v2", True)
    task = pb.Task(name="tasks/t1", type="rag.answer")
    task.status.state = state  # type: ignore[assignment]
    task.artifacts.append(artifact)
    return task


def test_quote_rule_accepts_the_support_inside_a_quote_and_a_long_enough_fragment() -> None:
    assert quote_matches_support("## Auto Explain  " + SUPPORT.upper(), SUPPORT)
    assert quote_matches_support("a means for logging execution plans", SUPPORT)
    assert not quote_matches_support("slow statements", SUPPORT)  # 2 content words: too short
    # 60 % of the support's content words, in another sentence
    assert quote_matches_support(
        "Module auto_explain: logging of execution plans for slow statements.", SUPPORT
    )
    assert not quote_matches_support("Plans are printed by EXPLAIN.", SUPPORT)
    assert not quote_matches_support("", SUPPORT)


def test_chunks_containing_compares_normalised_text() -> None:
    chunks = [
        ("a", "Heading\n" + SUPPORT.replace(" a means", "\n  A   means")),
        ("b", SUPPORT[:40]),
        ("c", "unrelated"),
    ]
    assert chunks_containing(SUPPORT, chunks) == frozenset({"a"})
    assert chunks_containing("", chunks) == frozenset()


def test_outcome_reads_text_citations_and_report_of_the_artifact() -> None:
    outcome = outcome_of(finished(SUPPORT.removesuffix(".") + " [1]."))
    assert outcome.state == COMPLETED
    assert outcome.model == "extractive-v2"
    assert outcome.supported == 1
    assert outcome.answered
    (citation,) = outcome.citations
    assert (citation.source, citation.document, citation.chunk_id) == (1, DOC, "c-1")
    assert SUPPORT in citation.quote  # the sentence splitter keeps the heading line with it


def test_abstention_unsupported_citations_and_failures_are_not_answers() -> None:
    assert is_abstention(ABSTENTION)
    assert is_abstention("  ")
    assert not outcome_of(finished(ABSTENTION)).answered
    unsupported = outcome_of(finished("Bananas grow on trees [2]."))
    assert unsupported.supported == 0
    assert not unsupported.citations
    assert not unsupported.answered
    failed = outcome_of(finished(SUPPORT + " [1]", state=pb.TASK_STATE_FAILED))
    assert failed.state == "FAILED"
    assert not failed.answered
    assert outcome_of(pb.Task(name="tasks/t2")).error == "no artifact"


def cited(document: str, chunk_id: str, quote: str) -> Citation:
    return Citation(1, document, chunk_id, "t", quote, quote)


def answer(*citations: Citation) -> Outcome:
    return Outcome(COMPLETED, "an answer [1].", citations, len(citations))


def test_judge_uses_the_support_chunks_and_falls_back_to_the_quote_rule() -> None:
    other_sentence = cited(DOC, "c-1", "It is loaded per session.")
    wrong_document = cited(OTHER, "c-2", SUPPORT)
    record = judge("a:1", "q?", True, SUPPORT, "s", DOC, frozenset({"c-1"}), answer(other_sentence))
    assert record.correct
    assert not record.correct_quote_rule
    assert record.support_located
    (judged,) = record.citations
    assert judged["right_document"]
    assert judged["in_support_chunk"]
    assert not judged["quote_matches_support"]
    # The support is in no chunk whole: the quote rule decides.
    record = judge("a:1", "q?", True, SUPPORT, "s", DOC, frozenset(), answer(other_sentence))
    assert record.correct is False
    assert record.support_located is False
    quoted = cited(DOC, "c-9", SUPPORT)
    assert judge("a:1", "q?", True, SUPPORT, "s", DOC, frozenset(), answer(quoted)).correct
    # The right words from another document are not a correct citation.
    record = judge("a:1", "q?", True, SUPPORT, "s", DOC, frozenset({"c-1"}), answer(wrong_document))
    assert record.correct is False
    assert record.correct_quote_rule is False
    assert record.abstained is None


def test_judge_unanswerable() -> None:
    abstained = judge("u:1", "q?", False, "", "", "", frozenset(), Outcome(COMPLETED, ABSTENTION))
    assert abstained.abstained is True
    assert abstained.correct is None
    answered = judge("u:1", "q?", False, "", "", "", frozenset(), answer(cited(OTHER, "c", "x")))
    assert answered.abstained is False
    assert answered.citations[0]["right_document"] is False


def test_summary_and_goals() -> None:
    good = cited(DOC, "c-1", SUPPORT)
    elsewhere = cited(OTHER, "c-2", "Plans are printed by EXPLAIN.")
    support_chunks = frozenset({"c-1"})
    records = [
        judge("a:1", "q", True, SUPPORT, "s", DOC, support_chunks, answer(good, elsewhere)),
        judge("a:2", "q", True, SUPPORT, "s", DOC, support_chunks, answer(elsewhere)),
        judge("a:3", "q", True, SUPPORT, "s", DOC, support_chunks, Outcome(COMPLETED, ABSTENTION)),
        judge("a:4", "q", True, SUPPORT, "s", DOC, support_chunks, Outcome("FAILED")),
        judge("u:1", "q", False, "", "", "", frozenset(), Outcome(COMPLETED, ABSTENTION)),
        judge("u:2", "q", False, "", "", "", frozenset(), answer(elsewhere)),
    ]
    metrics = summarise(records)
    assert metrics["answerable"] == {
        "questions": 4,
        "answered": 2,
        "answer_rate": 0.5,
        "answered_with_correct_citation": 0.25,
        "answered_with_correct_citation_quote_rule": 0.25,
        "support_not_located": 0,
    }
    citations = metrics["citations"]
    assert citations["verified_citations_of_answered"] == 3
    assert citations["citation_precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert citations["citation_precision_chunk"] == pytest.approx(1 / 3, abs=1e-4)
    assert citations["citation_precision_quote"] == pytest.approx(1 / 3, abs=1e-4)
    assert metrics["unanswerable"] == {"questions": 2, "abstained": 1, "abstention_rate": 0.5}
    assert metrics["tasks_not_completed"] == 1
    met = goals(metrics)
    assert met["abstention_rate"] == {"value": 0.5, "min": 0.9, "met": False}
    assert not any(goal["met"] for goal in met.values())


def test_summary_without_answers_has_no_precision() -> None:
    metrics = summarise([])
    assert metrics["citations"]["citation_precision"] is None
    assert goals(metrics)["citation_precision"]["met"] is False


def test_spread_takes_both_ends_of_the_list_into_account() -> None:
    assert spread(3, 9) == [0, 3, 6]
    assert spread(5, 3) == [0, 1, 2]
    assert spread(0, 3) == []


def test_results_never_go_inside_the_repository(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        results_dir(Path(__file__).parent / "out")
    assert results_dir(tmp_path / "x").is_dir()


# --------------------------------------------------------------------------- research

PLAN = [
    "What is auto_explain?",
    "How does auto_explain work?",
    "What are the benefits of auto_explain?",
]
FILES = {DOC: "docs/auto-explain.md", OTHER: "docs/other.md"}


def research_report(*answers: tuple[str, str], uncovered: tuple[str, ...] = ()) -> pb.Task:
    """A finished research task with the report the workflow writes."""
    parts = ["# Research: auto_explain"]
    parts += [f"## {question}\n\n{text}" for question, text in answers]
    if uncovered:
        parts.append(f"## {NOT_COVERED}\n\n" + "\n".join(f"- {q}" for q in uncovered))
    artifact, _ = answer_artifact("report", "report", "\n\n".join(parts), SOURCES, "x", True)
    task = pb.Task(name="tasks/r1", type="research")
    task.status.state = pb.TASK_STATE_COMPLETED  # type: ignore[assignment]
    task.status.message = "report on 2 of 3 sub-questions"
    task.artifacts.append(artifact)
    return task


def test_report_sections_take_only_the_planned_headings() -> None:
    text = (
        "# Research: x\n\n## What is x?\n\nX is a thing [1].\n## Quoted heading\nmore\n\n"
        f"## How does x work?\n\nIt works [2].\n\n## {NOT_COVERED}\n\n- What are x's limits?"
    )
    sections = report_sections(text, ["How does x work?", "What is x?", NOT_COVERED])
    assert [s.heading for s in sections] == ["What is x?", "How does x work?", NOT_COVERED]
    assert sections[0].body == "X is a thing [1].\n## Quoted heading\nmore"
    assert sections[2].body == "- What are x's limits?"


def test_report_sections_take_folded_headings_of_planned_questions() -> None:
    text = "# Research: x\n\n## What is x? / How does x work?\n\nX is a thing [1].\n## A / B\nz"
    sections = report_sections(text, ["How does x work?", "What is x?", NOT_COVERED])
    assert [s.questions for s in sections] == [["What is x?", "How does x work?"]]
    assert sections[0].body == "X is a thing [1].\n## A / B\nz"


def test_research_report_citations_are_placed_in_their_sections() -> None:
    claim = SUPPORT.removesuffix(".") + " [1]."
    task = research_report(
        (PLAN[0], claim + " Plans are printed by EXPLAIN for one statement [2]."),
        (PLAN[1], claim + " Bananas grow on trees [2]."),  # the second citation fails
        uncovered=(PLAN[2],),
    )
    record = judge_research(
        "auto_explain", ["docs/auto-explain.md"], PLAN, outcome_of(task), FILES, "tasks/r1", 12.5
    )
    assert [(s["question"], s["verified_citations"]) for s in record.sections] == [
        (PLAN[0], 2),
        (PLAN[1], 1),  # the same claim again, in its own section
    ]
    assert record.sections[0]["files"] == ["docs/auto-explain.md", "docs/other.md"]
    assert record.not_covered == [PLAN[2]]
    assert [(c["section"], c["expected_file"]) for c in record.citations] == [
        (PLAN[0], True),
        (PLAN[0], False),
        (PLAN[1], True),
    ]
    assert record.message == "report on 2 of 3 sub-questions"
    figures = research_figures(record)
    assert figures == {
        "state": COMPLETED,
        "sub_questions_planned": 3,
        "sub_questions_answered": 2,
        "sections_written": 2,
        "sections_answered": 2,
        "sections_not_covered": 1,
        "sections_repeating_another": 0,
        "verified_citations": 3,
        "citations_checked": 4,
        "citation_precision": pytest.approx(2 / 3, abs=1e-4),
        "every_answered_section_cited": True,
        "plan_accounted_for": True,
        "unplaced_citations": 0,
        "latency_ms": 12.5,
    }


def test_a_section_without_a_verified_citation_is_written_but_not_answered() -> None:
    task = research_report(
        (PLAN[0], SUPPORT.removesuffix(".") + " [1]"),  # no full stop before the next heading
        (PLAN[1], "Bananas grow on trees [2]."),
    )
    record = judge_research("auto_explain", ["docs/auto-explain.md"], PLAN, outcome_of(task), FILES)
    assert [s["verified_citations"] for s in record.sections] == [1, 0]
    figures = research_figures(record)
    assert figures["sections_answered"] == 1
    assert figures["every_answered_section_cited"] is False
    assert figures["plan_accounted_for"] is False  # PLAN[2] is neither written nor listed
    assert figures["unplaced_citations"] == 0
    assert figures["sections_repeating_another"] == 0
    again = research_report((PLAN[0], "Same [1]."), (PLAN[1], "Same  [1]."), (PLAN[2], "New."))
    repeated = judge_research("auto_explain", [], PLAN, outcome_of(again), FILES)
    assert [s["repeats_an_earlier_section"] for s in repeated.sections] == [False, True, False]
    failed = judge_research("x", [], PLAN, Outcome("FAILED", error="boom"), FILES)
    assert research_figures(failed)["every_answered_section_cited"] is None
    overall = summarise_research([record, failed])
    assert overall["topics"] == 2
    assert overall["tasks_completed"] == 1
    assert overall["sub_questions_planned"] == 6
    assert overall["sections_answered"] == 1
    assert overall["answered_share"] == pytest.approx(1 / 6, abs=1e-4)
    assert overall["citation_precision"] == 1.0
    assert overall["every_answered_section_cited"] is False
    assert overall["latency"]["count"] == 1

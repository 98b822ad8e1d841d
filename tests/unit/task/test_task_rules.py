"""Pure rules of the task service: lifecycle and citations."""

from __future__ import annotations

import pytest

from services.task import citations, states
from services.task.generation import Source


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (states.SUBMITTED, states.WORKING),
        (states.WORKING, states.COMPLETED),
        (states.WORKING, states.SUBMITTED),
        (states.INPUT_REQUIRED, states.SUBMITTED),
        (states.FAILED, states.SUBMITTED),
        (states.SUBMITTED, states.CANCELED),
    ],
)
def test_legal_transitions_pass(old: int, new: int) -> None:
    states.check_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (states.COMPLETED, states.WORKING),
        (states.CANCELED, states.SUBMITTED),
        (states.REJECTED, states.SUBMITTED),
        (states.SUBMITTED, states.COMPLETED),
        (states.INPUT_REQUIRED, states.COMPLETED),
        (states.FAILED, states.CANCELED),
    ],
)
def test_illegal_transitions_are_rejected(old: int, new: int) -> None:
    with pytest.raises(states.IllegalTransition):
        states.check_transition(old, new)


SOURCES = [
    Source(1, "documents/a", "a-0", "A", "Cats sleep sixteen hours a day. Cats purr."),
    Source(2, "documents/b", "b-0", "B", "Dogs bark at strangers. Dogs love walks."),
]


def test_citations_are_verified_against_the_cited_chunk() -> None:
    answer = "Cats sleep sixteen hours a day [1]. Dogs bark at strangers [1]. Fish fly [3]."
    found, uncited = citations.extract(answer, SOURCES)
    checks = citations.verify(found, SOURCES)
    assert [c.supported for c in checks] == [True, False, False]
    assert checks[0].quote == "Cats sleep sixteen hours a day."
    assert checks[2].reason == "cites a source that was not retrieved"
    assert uncited == []


def test_sentences_without_a_citation_are_reported() -> None:
    _, uncited = citations.extract("Dogs love walks [2]. Birds sing.", SOURCES)
    assert uncited == ["Birds sing."]

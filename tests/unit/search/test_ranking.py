"""Score fusion, reciprocal-rank fusion and headline parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.search.ranking import (
    START_SEL,
    STOP_SEL,
    LegHit,
    parse_headline,
    rrf,
    score_fusion,
    single_leg,
)


def hits(*keys: str) -> list[LegHit[str]]:
    return [LegHit(k, 1.0 / (i + 1)) for i, k in enumerate(keys)]


def test_rrf_scores_are_weighted_reciprocal_ranks() -> None:
    fused = rrf(hits("a", "b"), hits("b", "c"), k=60, keyword_weight=0.5, vector_weight=0.5)
    by_key = {f.key: f for f in fused}
    assert by_key["b"].score == pytest.approx(0.5 / 62 + 0.5 / 61)
    assert by_key["a"].score == pytest.approx(0.5 / 61)
    assert (by_key["b"].keyword_rank, by_key["b"].vector_rank) == (2, 1)
    assert next(f.key for f in fused) == "b"


def test_weights_shift_the_order() -> None:
    keyword_only = rrf(hits("a"), hits("b"), keyword_weight=1.0, vector_weight=0.0)
    assert keyword_only[0].key == "a"
    vector_only = rrf(hits("a"), hits("b"), keyword_weight=0.0, vector_weight=1.0)
    assert vector_only[0].key == "b"


@given(
    st.lists(st.sampled_from("abcdefghij"), unique=True),
    st.lists(st.sampled_from("abcdefghij"), unique=True),
)
def test_fusion_keeps_every_key_once_best_first(kw: list[str], vec: list[str]) -> None:
    fused = rrf(hits(*kw), hits(*vec))
    assert sorted(f.key for f in fused) == sorted(set(kw) | set(vec))
    scores = [f.score for f in fused]
    assert scores == sorted(scores, reverse=True)


def test_score_fusion_combines_min_max_normalised_scores() -> None:
    keyword = [LegHit("a", 8.0), LegHit("b", 4.0), LegHit("c", 0.0)]
    vector = [LegHit("b", 0.9), LegHit("c", 0.5), LegHit("d", 0.4)]
    fused = score_fusion(keyword, vector, keyword_weight=0.35, vector_weight=0.65)
    by_key = {f.key: f for f in fused}
    assert by_key["a"].score == pytest.approx(0.35)  # best keyword, absent from vector
    assert by_key["b"].score == pytest.approx(0.35 * 0.5 + 0.65 * 1.0)
    assert by_key["c"].score == pytest.approx(0.65 * 0.2)
    assert by_key["d"].score == pytest.approx(0.0)
    assert [f.key for f in fused] == ["b", "a", "c", "d"]
    assert (by_key["b"].keyword_rank, by_key["b"].vector_rank) == (2, 1)
    assert (by_key["b"].keyword_score, by_key["b"].vector_score) == (4.0, 0.9)


def test_score_fusion_keeps_a_clear_winner_that_rank_fusion_would_tie() -> None:
    # The vector leg barely separates x and y; the keyword leg strongly prefers y.
    keyword = [LegHit("y", 10.0), LegHit("z", 1.0), LegHit("x", 0.9)]
    vector = [LegHit("x", 0.80), LegHit("y", 0.79), LegHit("z", 0.1)]
    assert score_fusion(keyword, vector)[0].key == "y"


def test_score_fusion_of_one_candidate_or_zero_weights_is_defined() -> None:
    [only] = score_fusion([LegHit("a", 0.2)], [])
    assert only.score == pytest.approx(0.35)
    assert [f.key for f in score_fusion(hits("a"), hits("b"), 0.0, 0.0)] == ["a", "b"]


@given(
    st.lists(st.sampled_from("abcdefghij"), unique=True),
    st.lists(st.sampled_from("abcdefghij"), unique=True),
    st.floats(0, 1),
)
def test_score_fusion_keeps_every_key_once_best_first_within_0_and_1(
    kw: list[str], vec: list[str], weight: float
) -> None:
    fused = score_fusion(hits(*kw), hits(*vec), weight, 1 - weight)
    assert sorted(f.key for f in fused) == sorted(set(kw) | set(vec))
    scores = [f.score for f in fused]
    assert scores == sorted(scores, reverse=True)
    assert all(-1e-9 <= s <= 1 + 1e-9 for s in scores)


def test_single_leg_uses_its_own_score() -> None:
    [only] = single_leg([LegHit("x", 0.7)], "vector")
    assert (only.score, only.vector_rank, only.keyword_rank) == (0.7, 1, 0)


def test_headline_markers_become_ranges() -> None:
    text, ranges = parse_headline(f"a {START_SEL}big{STOP_SEL} red {START_SEL}dog{STOP_SEL}")
    assert text == "a big red dog"
    assert [text[s:e] for s, e in ranges] == ["big", "dog"]


def test_headline_ranges_count_code_points() -> None:
    text, ranges = parse_headline(f"héllo 🙂 {START_SEL}wörld{STOP_SEL}")
    assert [text[s:e] for s, e in ranges] == ["wörld"]


def test_unbalanced_markers_are_tolerated() -> None:
    assert parse_headline(f"{STOP_SEL}x {START_SEL}y") == ("x y", [(2, 3)])

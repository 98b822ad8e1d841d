"""Ranking rules of Search, pure: fusing the two legs (score fusion, the default,
or reciprocal-rank fusion) and turning `ts_headline` output into a plain snippet
with highlight ranges."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

DEFAULT_RRF_K = 60
DEFAULT_WEIGHT = 0.5  # each leg's, in reciprocal-rank fusion
# Score fusion's leg weights, measured on the labelled sets of bench/search_quality.py
# (docs/search.md): the vector leg carries more, the keyword leg breaks its ties and
# brings in exact-term matches.
SCORE_KEYWORD_WEIGHT = 0.35
SCORE_VECTOR_WEIGHT = 0.65
# Markers ts_headline puts around matches: private-use characters, stripped
# from the chunk text first so a document cannot forge a highlight.
START_SEL = "\ue000"
STOP_SEL = "\ue001"

K = TypeVar("K", bound=Hashable)


# Plain slotted dataclasses, not frozen: a search builds ~400 of each, and a frozen
# dataclass's __init__ (object.__setattr__ per field) cost 0.41 ms for 400 vs 0.07.


@dataclass(slots=True)
class LegHit(Generic[K]):
    key: K
    score: float


@dataclass(slots=True)
class Fused(Generic[K]):
    key: K
    score: float
    keyword_rank: int = 0  # from 1; 0 = absent from that leg
    keyword_score: float = 0.0
    vector_rank: int = 0
    vector_score: float = 0.0


def rrf(
    keyword: Sequence[LegHit[K]],
    vector: Sequence[LegHit[K]],
    k: int = DEFAULT_RRF_K,
    keyword_weight: float = DEFAULT_WEIGHT,
    vector_weight: float = DEFAULT_WEIGHT,
) -> list[Fused[K]]:
    """score = Σ weight / (k + rank) over the legs a key appears in (ranks from 1,
    each leg already best-first). Ties break on the better single rank, then key
    order, so the result is deterministic."""
    ranks: dict[K, dict[str, float]] = {}
    for rank, hit in enumerate(keyword, start=1):
        ranks.setdefault(hit.key, {}).update(kr=rank, ks=hit.score)
    for rank, hit in enumerate(vector, start=1):
        ranks.setdefault(hit.key, {}).update(vr=rank, vs=hit.score)
    fused = []
    for key, info in ranks.items():
        kr, vr = int(info.get("kr", 0)), int(info.get("vr", 0))
        score = (keyword_weight / (k + kr) if kr else 0.0) + (
            vector_weight / (k + vr) if vr else 0.0
        )
        fused.append(Fused(key, score, kr, info.get("ks", 0.0), vr, info.get("vs", 0.0)))
    return _ordered(fused, len(keyword) + len(vector) + 1)


def score_fusion(
    keyword: Sequence[LegHit[K]],
    vector: Sequence[LegHit[K]],
    keyword_weight: float = SCORE_KEYWORD_WEIGHT,
    vector_weight: float = SCORE_VECTOR_WEIGHT,
) -> list[Fused[K]]:
    """score = (wk·k̂ + wv·v̂) / (wk + wv), where each leg's scores are min-max
    normalised over its candidates (best 1, worst 0; a leg with one distinct score
    gives 1) and a key absent from a leg has 0 there. Unlike RRF this keeps how far
    apart the candidates are: a clear winner in one leg stays ahead. Ties break on
    the better single rank, then key order."""
    total = keyword_weight + vector_weight
    wk, wv = (keyword_weight / total, vector_weight / total) if total else (0.5, 0.5)
    # key → [k̂, keyword rank, keyword score, v̂, vector rank, vector score]
    found: dict[K, list[Any]] = {}
    normalised = _min_max([h.score for h in keyword])
    for rank, (hit, value) in enumerate(zip(keyword, normalised, strict=True), start=1):
        found[hit.key] = [value, rank, hit.score, 0.0, 0, 0.0]
    normalised = _min_max([h.score for h in vector])
    for rank, (hit, value) in enumerate(zip(vector, normalised, strict=True), start=1):
        row = found.get(hit.key)
        if row is None:
            found[hit.key] = [0.0, 0, 0.0, value, rank, hit.score]
        else:
            row[3:] = [value, rank, hit.score]
    big = len(keyword) + len(vector) + 1
    ranked = sorted(
        (
            (wk * kn + wv * vn, min(kr or big, vr or big), str(key), key, kr, ks, vr, vs)
            for key, (kn, kr, ks, vn, vr, vs) in found.items()
        ),
        key=lambda row: (-row[0], row[1], row[2]),  # as _ordered, before building results
    )
    return [Fused(key, score, kr, ks, vr, vs) for score, _, _, key, kr, ks, vr, vs in ranked]


def _min_max(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def _ordered(fused: list[Fused[K]], big: int) -> list[Fused[K]]:
    """Best first; ties on the better single rank, then key order (deterministic)."""
    fused.sort(
        key=lambda f: (
            -f.score,
            min(f.keyword_rank or big, f.vector_rank or big),
            str(f.key),
        )
    )
    return fused


def single_leg(hits: Sequence[LegHit[K]], leg: str) -> list[Fused[K]]:
    """One leg as results: its own score, its own ranks."""
    if leg == "keyword":
        return [
            Fused(h.key, h.score, keyword_rank=i, keyword_score=h.score)
            for i, h in enumerate(hits, start=1)
        ]
    return [
        Fused(h.key, h.score, vector_rank=i, vector_score=h.score)
        for i, h in enumerate(hits, start=1)
    ]


_MARKERS = re.compile(f"({re.escape(START_SEL)}|{re.escape(STOP_SEL)})")


def strip_markers(text: str) -> str:
    return text.replace(START_SEL, "").replace(STOP_SEL, "")


def parse_headline(headline: str) -> tuple[str, list[tuple[int, int]]]:
    """ts_headline output with START_SEL/STOP_SEL markers → (plain text, [start,
    end) ranges in code points). Unbalanced markers are tolerated."""
    plain: list[str] = []
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    length = 0
    for piece in _MARKERS.split(headline):
        if piece == START_SEL:
            start = length
        elif piece == STOP_SEL:
            if start is not None and length > start:
                ranges.append((start, length))
            start = None
        elif piece:
            plain.append(piece)
            length += len(piece)
    if start is not None and length > start:
        ranges.append((start, length))
    return "".join(plain), _merge(ranges)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged

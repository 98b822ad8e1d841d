"""The offline default generator: answers by quoting the retrieved sentences that
answer the question, each cited, or says that the sources do not answer it.

Each sentence of the sources (headings are context, not quotes) is scored by
- meaning: cosine similarity of the question and the sentence (read with the
  heading above it) under the embedder the search index uses (MiniLM,
  offline), which finds a sentence that answers in other words, plus the
  similarity of the question and the sentence's whole chunk;
- terms: the share of the question's content terms (Snowball-stemmed, so
  "isolation" meets "isolated", weighted by how rare each term is among the
  candidate sentences) that the sentence, or the heading above it, contains;
- rank: a small prior for better-ranked sources.
The best sentence is quoted when it is close enough in meaning or carries most
of the question's terms; up to two more are added when they score almost as
well. Otherwise the generator abstains, which is the honest answer to a
question the corpus does not cover. Deterministic for the same prompt.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import snowballstemmer  # type: ignore[import-untyped]

from services.task.generation import (
    STOPWORDS,
    Generation,
    OnDelta,
    Prompt,
    Usage,
    cite,
    count_tokens,
    sentences,
    words,
)

ABSTENTION = "The retrieved documents do not answer this question."
# Words that shape a question without saying what it is about.
_QUESTION_WORD_TEXT = (
    "what how why which who whom whose when where does do did is are was were can could "
    "should would will shall may might must explain describe tell me we us our use used "
    "using way ways there"
)
QUESTION_WORDS = frozenset(_QUESTION_WORD_TEXT.split())
_HEADING_MAX_WORDS = 16
_MIN_WORDS = 4
_MAX_WORDS = 90

Encode = Callable[[Sequence[str]], Awaitable[list[list[float]]]]


@cache
def _stemmer() -> Any:
    return snowballstemmer.stemmer("english")


def terms(text: str) -> list[str]:
    """Stemmed content words of `text`, in order."""
    kept = [w for w in words(text) if w not in STOPWORDS and w not in QUESTION_WORDS and len(w) > 1]
    stems: list[str] = _stemmer().stemWords(kept)
    return stems


@dataclass(frozen=True)
class Candidate:
    source_rank: int
    source_index: int
    document: str
    position: int
    sentence: str
    heading: str


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    meaning: float
    term_share: float
    score: float


@dataclass(frozen=True)
class ExtractiveOptions:
    meaning_weight: float = 0.5
    chunk_weight: float = 0.2
    term_weight: float = 0.3
    rank_weight: float = 0.05
    lead_weight: float = 0.1  # the question's terms open the sentence (it is about them)
    fragment_penalty: float = 0.03  # no closing punctuation: a label or cell, not a statement
    min_meaning: float = 0.4  # a sentence this close in meaning answers on its own
    min_terms: float = 0.75  # or one carrying this share of the question's terms
    min_score: float = 0.35  # and never below this combined score
    companion_ratio: float = 0.9  # further sentences must score this share of the best
    max_sentences: int = 3


def split_heading(text: str) -> tuple[str, str]:
    """(heading, body) of a chunk whose first line is a heading path (no sentence
    punctuation, short, followed by more text); else ("", text)."""
    first, newline, rest = text.partition("\n")
    line = first.strip()
    if (
        newline
        and rest.strip()
        and line
        and len(line.split()) <= _HEADING_MAX_WORDS
        and line[-1] not in ".!?:;,"
    ):
        return line, rest
    return "", text


_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")


def candidates(sources: Sequence[Any], question: str = "") -> list[Candidate]:
    """Quotable sentences of the sources, best-ranked source first: prose outside
    code blocks, not questions themselves (nor quotes of this one); duplicates
    (same words) are kept once."""
    found: list[Candidate] = []
    asked = " ".join(words(question))
    seen: set[str] = set()
    for rank, source in enumerate(sources):
        heading, body = split_heading(source.text)
        position = 0
        fenced = False
        for line in body.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
                continue
            if fenced:
                continue
            for sentence in sentences(_LIST_MARKER.sub("", line)):
                key = " ".join(words(sentence))
                count = len(sentence.split())
                if (
                    key in seen
                    or sentence.endswith("?")
                    or (asked and asked in key)
                    or not _MIN_WORDS <= count <= _MAX_WORDS
                    or not _prose(sentence)
                ):
                    continue
                seen.add(key)
                found.append(
                    Candidate(rank, source.index, source.document, position, sentence, heading)
                )
                position += 1
    return found


def in_context(candidate: Candidate) -> str:
    """What the encoder reads for a candidate: the sentence under its heading."""
    if candidate.heading:
        return f"{candidate.heading}: {candidate.sentence}"
    return candidate.sentence


def _prose(sentence: str) -> bool:
    """Mostly words, not code or a table row."""
    letters = sum(c.isalpha() or c.isspace() or c in "`_-'," for c in sentence)
    return letters >= 0.7 * len(sentence) and "|" not in sentence


@dataclass(frozen=True)
class TermShares:
    """Per candidate: the rarity-weighted share of the question's terms it (or its
    heading, at half weight) contains, and the share found in its first words."""

    whole: list[float]
    lead: list[float]


_LEAD_WORDS = 6


def term_shares(question: str, found: Sequence[Candidate]) -> TermShares:
    wanted = set(terms(question))
    if not wanted:
        return TermShares([0.0] * len(found), [0.0] * len(found))
    sentence_terms = [set(terms(c.sentence)) for c in found]
    heading_terms = [set(terms(c.heading)) for c in found]
    lead_terms = [set(terms(" ".join(c.sentence.split()[:_LEAD_WORDS]))) for c in found]
    frequency: Counter[str] = Counter(t for ts in sentence_terms for t in ts & wanted)
    total = len(found) + 1
    weight = {t: math.log(1 + total / (1 + frequency[t])) for t in wanted}
    whole = sum(weight.values())
    shares, leads = [], []
    for own, above, lead in zip(sentence_terms, heading_terms, lead_terms, strict=True):
        got = sum(weight[t] for t in wanted & own) + 0.5 * sum(
            weight[t] for t in (wanted & above) - own
        )
        shares.append(got / whole)
        leads.append(sum(weight[t] for t in wanted & lead) / whole)
    return TermShares(shares, leads)


def choose(
    meanings: Sequence[float],
    chunk_meanings: Sequence[float],
    shares: TermShares,
    found: Sequence[Candidate],
    options: ExtractiveOptions,
) -> list[Scored]:
    """The sentences to quote, best first (empty: abstain). `meanings` are the
    candidates' similarities to the question, `chunk_meanings` the sources' (by
    rank), `shares` the candidates' term shares."""
    if not found:
        return []
    scored = sorted(
        (
            Scored(
                c,
                m,
                s,
                options.meaning_weight * m
                + options.chunk_weight * chunk_meanings[c.source_rank]
                + options.term_weight * s
                + options.lead_weight * lead
                + options.rank_weight / (1 + c.source_rank)
                - (0.0 if c.sentence.endswith((".", "!", "?")) else options.fragment_penalty),
            )
            for c, m, s, lead in zip(found, meanings, shares.whole, shares.lead, strict=True)
        ),
        key=lambda x: (-x.score, x.candidate.source_rank, x.candidate.position),
    )
    answering = [
        x
        for x in scored
        if (x.meaning >= options.min_meaning or x.term_share >= options.min_terms)
        and x.score >= options.min_score
    ]
    if not answering:
        return []
    best = answering[0]
    picked = [best]
    for other in answering[1:]:
        if (
            len(picked) == options.max_sentences
            or other.score < options.companion_ratio * best.score
        ):
            break
        if other.candidate.document == best.candidate.document:
            picked.append(other)
    return picked


class ExtractiveGenerator:
    """Quotes the source sentences that answer the question, each cited; abstains
    when none does (see the module docstring)."""

    model = "extractive-v2"

    def __init__(
        self, encode: Encode | None = None, options: ExtractiveOptions | None = None
    ) -> None:
        self._encode = encode
        self.options = options or ExtractiveOptions()

    async def generate(
        self, prompt: Prompt, on_delta: OnDelta, max_output_tokens: int
    ) -> Generation:
        found = candidates(prompt.sources, prompt.question)
        shares = term_shares(prompt.question, found)
        meanings = [0.0] * len(found)
        chunk_meanings = [0.0] * len(prompt.sources)
        if found and self._encode is not None:
            texts = [prompt.question, *(in_context(c) for c in found)]
            texts += [source.text for source in prompt.sources]
            vectors = np.asarray(await self._encode(texts))
            similarities = (vectors[1:] @ vectors[0]).tolist()
            meanings, chunk_meanings = similarities[: len(found)], similarities[len(found) :]
        picked = choose(meanings, chunk_meanings, shares, found, self.options)
        if not picked:
            text = ABSTENTION
            await on_delta(text)
        else:
            # Document order of the picked sentences reads best.
            ordered = sorted(picked, key=lambda s: (s.candidate.source_rank, s.candidate.position))
            pieces = []
            for i, scored in enumerate(ordered):
                quoted = cite(scored.candidate.sentence, scored.candidate.source_index)
                if not quoted.endswith((".", "!", "?")):
                    quoted += "."
                piece = ("" if i == 0 else " ") + quoted
                pieces.append(piece)
                await on_delta(piece)
            text = "".join(pieces)
        usage = Usage(count_tokens(prompt.text()), count_tokens(text), estimated=True)
        return Generation(text=text, model=self.model, usage=usage)


def minilm_encoder() -> Encode:
    """The search index's embedder (MiniLM, offline, loaded on first use)."""
    holder: dict[str, Any] = {}

    async def encode(texts: Sequence[str]) -> list[list[float]]:
        if "model" not in holder:
            from services.platform.minilm import MiniLmOnnxEmbedder

            holder["model"] = MiniLmOnnxEmbedder()
        vectors: list[list[float]] = await holder["model"].embed(texts)
        return vectors

    return encode

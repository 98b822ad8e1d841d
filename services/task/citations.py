"""Citations of a generated answer and their verification against the sources.

A citation is a sentence of the answer (the claim) followed by `[n]`. Its quote
is the sentence of source `n` that best supports the claim. A citation is
supported when the quote really is in the cited chunk and the chunk covers at
least `threshold` of the claim's content words; unsupported ones are flagged in
the report and dropped from the answer's citation parts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from services.task.generation import Source, content_words, sentences

_MARKER = re.compile(r"\[(\d{1,3})\]")
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Citation:
    source: int
    claim: str
    quote: str


@dataclass(frozen=True)
class Check:
    source: int
    claim: str
    quote: str
    document: str
    chunk_id: str
    title: str
    supported: bool
    support: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _normalize(text: str) -> str:
    return " ".join(text.split()).lower()


def _coverage(claim: str, text: str) -> float:
    wanted = content_words(claim)
    if not wanted:
        return 0.0
    return len(wanted & content_words(text)) / len(wanted)


def extract(answer: str, sources: Sequence[Source]) -> tuple[list[Citation], list[str]]:
    """Citations of `answer`, and its sentences that cite nothing."""
    by_index = {s.index: s for s in sources}
    citations: list[Citation] = []
    uncited: list[str] = []
    merged: list[str] = []
    for sentence in sentences(answer):
        # A marker placed after the full stop ("... rows. [2]") cites the sentence before.
        if merged and not _MARKER.sub("", sentence).strip():
            merged[-1] = f"{merged[-1]} {sentence}"
        else:
            merged.append(sentence)
    for sentence in merged:
        numbers = [int(n) for n in _MARKER.findall(sentence)]
        claim = re.sub(r"\s+([.!?,;:])", r"\1", _MARKER.sub("", sentence)).strip()
        if not numbers:
            if claim:
                uncited.append(claim)
            continue
        for number in dict.fromkeys(numbers):
            source = by_index.get(number)
            quote = ""
            if source is not None:
                candidates = sentences(source.text) or [source.text]
                quote = max(candidates, key=lambda s: (_coverage(claim, s), -len(s)))
            citations.append(Citation(number, claim, quote))
    return citations, uncited


def verify(
    citations: Sequence[Citation], sources: Sequence[Source], threshold: float = DEFAULT_THRESHOLD
) -> list[Check]:
    by_index = {s.index: s for s in sources}
    checks = []
    for citation in citations:
        source = by_index.get(citation.source)
        if source is None:
            checks.append(
                Check(
                    citation.source,
                    citation.claim,
                    citation.quote,
                    "",
                    "",
                    "",
                    False,
                    0.0,
                    "cites a source that was not retrieved",
                )
            )
            continue
        support = _coverage(citation.claim, source.text)
        if not citation.quote or _normalize(citation.quote) not in _normalize(source.text):
            supported, reason = False, "quote is not in the cited chunk"
        elif support < threshold:
            supported, reason = False, f"chunk covers {support:.0%} of the claim"
        else:
            supported, reason = True, "quote found in the cited chunk"
        checks.append(
            Check(
                citation.source,
                citation.claim,
                citation.quote,
                source.document,
                source.chunk_id,
                source.title,
                supported,
                round(support, 3),
                reason,
            )
        )
    return checks

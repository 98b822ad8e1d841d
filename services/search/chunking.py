"""Sentence-aware chunking with overlap. Pure: no I/O, deterministic.

A document is split into sentences (ends of sentences, blank lines), and
sentences are packed into windows of at most `max_words` words; each window
after the first starts with the trailing sentences of the previous one, up to
`overlap_words` words, so a passage cut at a boundary is still found whole.
A sentence longer than a window is cut into word runs. The same text always
gives the same chunks with the same ordinals (0, 1, ...), which is what lets
the indexer keep the embeddings of chunks whose text did not change.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n\s*\n+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ChunkingOptions:
    max_words: int = 120
    overlap_words: int = 24

    def __post_init__(self) -> None:
        if self.max_words < 1:
            raise ValueError("max_words must be at least 1")
        if not 0 <= self.overlap_words < self.max_words:
            raise ValueError("overlap_words must be in [0, max_words)")


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def split_sentences(text: str) -> list[list[str]]:
    """Sentences as lists of words (whitespace normalised); empty ones dropped."""
    sentences = []
    for piece in _SENTENCE_END.split(text):
        words = piece.split()
        if words:
            sentences.append(words)
    return sentences


def _bounded(sentences: list[list[str]], max_words: int) -> list[list[str]]:
    out: list[list[str]] = []
    for words in sentences:
        for start in range(0, len(words), max_words):
            out.append(words[start : start + max_words])
    return out


def chunk_text(text: str, options: ChunkingOptions | None = None) -> list[Chunk]:
    """The chunks of `text`, in order."""
    options = options or ChunkingOptions()
    sentences = _bounded(split_sentences(text), options.max_words)
    windows: list[list[list[str]]] = []
    current: list[list[str]] = []
    size = 0
    fresh = 0  # sentences in `current` that no earlier window holds
    for sentence in sentences:
        if current and size + len(sentence) > options.max_words:
            windows.append(current)
            current, size = _overlap(
                current, options.overlap_words, options.max_words - len(sentence)
            )
            fresh = 0
        current.append(sentence)
        size += len(sentence)
        fresh += 1
    if current and fresh:
        windows.append(current)
    return [
        Chunk(ordinal, " ".join(word for sentence in window for word in sentence))
        for ordinal, window in enumerate(windows)
    ]


def _overlap(window: list[list[str]], overlap_words: int, room: int) -> tuple[list[list[str]], int]:
    """The trailing sentences of `window` that fit in the overlap and leave room."""
    budget = min(overlap_words, room)
    kept: list[list[str]] = []
    size = 0
    for sentence in reversed(window):
        if size + len(sentence) > budget:
            break
        kept.insert(0, sentence)
        size += len(sentence)
    return kept, size


def normalise_space(text: str) -> str:
    return _SPACE.sub(" ", text).strip()

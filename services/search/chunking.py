"""Structure- and token-aware chunking with overlap. Pure: no I/O, deterministic.

A chunk is what the embedder sees whole, so its size is measured in the
embedder's own tokens (`TokenCounter`), and the embedder's input limit is a hard
bound: the document title (embedded with every chunk), the chunk's heading line
and its body together fit in `max_tokens`, special tokens included.

How a document is cut:
1. Sections. Markdown headings (`# …` and setext `===`/`---` underlines, not
   inside fenced code) start a section; a chunk never spans two sections, and
   its text opens with the heading path ("Search > Row-level security"), so a
   chunk read alone (by a person, the keyword leg or the embedder) says what it
   is about. A first heading that repeats the document title is left out.
2. Sentences. A section body splits at sentence ends, blank lines and the
   start of list items, table rows and fenced code lines.
3. Windows. Sentences are packed into windows of at most the token budget; each
   window after the first starts with the trailing whole sentences of the one
   before, up to `overlap_tokens`, so a passage cut at a boundary is still found
   whole. A sentence longer than the budget is cut into word runs (a word longer
   than the budget into character runs).

The same text always gives the same chunks with the same ordinals (0, 1, ...),
which is what lets the indexer keep the vectors of chunks whose text did not
change. `CHUNKER_VERSION` names these rules: chunks store the version that made
them, and `ReindexTenant` rebuilds documents chunked by an older one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

# 1: 120-word windows of whitespace-joined sentences, no structure.
# 2: sections with heading paths, windows sized in the embedder's tokens.
CHUNKER_VERSION = 2
HEADING_SEPARATOR = " > "

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
# Ends of sentences (not the "1." of a numbered list item).
_SENTENCE_END = re.compile(r"(?<=[.!?…])(?<!^\d\.)(?<!^\d\d\.)[\"')\]]*\s+(?=\S)")
# Lines that start a unit of their own: list items, table rows.
_ITEM = re.compile(r"^\s*(?:[-*+•]\s|\d{1,3}[.)]\s|\|)")
_SPACE = re.compile(r"\s+")


class TokenCounter(Protocol):
    """Counts an embedder's tokens. For WordPiece (MiniLM) the tokens of words
    joined by spaces are exactly the sum of each word's tokens, which is what
    lets the chunker measure windows word by word."""

    @property
    def max_tokens(self) -> int:
        """The model's input limit, special tokens included."""
        ...

    @property
    def special_tokens(self) -> int:
        """Tokens the model adds to every input ([CLS], [SEP])."""
        ...

    def counts(self, words: Sequence[str]) -> list[int]:
        """Tokens of each word (no special tokens)."""
        ...


@dataclass(frozen=True)
class WordCounter:
    """One token per word: the fallback for embedders without a tokenizer of their
    own (the hashing test embedder)."""

    max_tokens: int = 160
    special_tokens: int = 0

    def counts(self, words: Sequence[str]) -> list[int]:
        return [1] * len(words)


@dataclass(frozen=True)
class ChunkingOptions:
    max_tokens: int | None = None  # None: the counter's input limit
    overlap_tokens: int = 24
    min_body_tokens: int = 32  # a very long title may not squeeze the body below this

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if self.overlap_tokens < 0:
            raise ValueError("overlap_tokens must not be negative")
        if self.min_body_tokens < 1:
            raise ValueError("min_body_tokens must be at least 1")


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]
    body: str


@dataclass
class _Heading:
    level: int
    name: str
    line: str  # as written, for a heading that turns out to be text
    used: bool = False  # some section's path holds it

    def __post_init__(self) -> None:
        self.name = normalise_space(self.name)
        self.line = self.line.strip()


def sections(text: str, title: str = "") -> list[Section]:
    """The Markdown sections of `text`, each with the path of headings above it. No
    text is lost: a heading with neither a body nor a subsection under it (a lone
    line that merely starts with `#`, say) is a section whose body is that line."""
    found: list[Section] = []
    path: list[_Heading] = []
    body: list[str] = []
    fenced = False

    def close() -> None:
        joined = "\n".join(body).strip()
        if joined:
            found.append(Section(tuple(h.name for h in path), joined))
            for heading in path:
                heading.used = True
        body.clear()

    def pop() -> None:
        heading = path.pop()
        if not heading.used:
            found.append(Section(tuple(h.name for h in path), heading.line))

    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            body.append(line)
            continue
        heading: _Heading | None = None
        if not fenced:
            atx = _ATX.match(line)
            if atx:
                heading = _Heading(len(atx.group(1)), atx.group(2), line)
            elif (
                _SETEXT.match(line)
                and body
                and body[-1].strip()
                and (i < 2 or not lines[i - 2].strip())  # the underlined line stands alone
                and not _SETEXT.match(body[-1])
            ):
                underlined = body.pop()
                heading = _Heading(1 if line.strip().startswith("=") else 2, underlined, underlined)
        if heading is None:
            body.append(line)
            continue
        close()
        while path and path[-1].level >= heading.level:
            pop()
        path.append(heading)
    close()
    while path:
        pop()
    if title:
        wanted = normalise_space(title).casefold()
        found = [
            Section(s.headings[1:], s.body)
            if s.headings and s.headings[0].casefold() == wanted
            else s
            for s in found
        ]
    return found


Unit = tuple[list[str], bool]  # a sentence's words; whether it starts a line


def units(text: str) -> list[Unit]:
    """Sentences of `text` as words (whitespace normalised), each marked when it
    starts a line: paragraphs (split at blank lines, list items and table rows)
    split at sentence ends, and every line of a fenced code block on its own."""
    found: list[Unit] = []
    paragraph: list[str] = []
    fenced = False

    def close() -> None:
        for i, piece in enumerate(_SENTENCE_END.split(" ".join(paragraph))):
            if piece.split():
                found.append((piece.split(), i == 0))
        paragraph.clear()

    for line in text.splitlines():
        if _FENCE.match(line) or fenced:
            close()
            if _FENCE.match(line):
                fenced = not fenced
            if line.split():
                found.append((line.split(), True))
        elif not line.strip() or _ITEM.match(line):
            close()
            paragraph.append(line.strip())
        else:
            paragraph.append(line.strip())
    close()
    return found


def split_sentences(text: str) -> list[list[str]]:
    """Sentences as lists of words (whitespace normalised); empty ones dropped."""
    return [words for words, _ in units(text)]


def chunk_text(
    text: str,
    counter: TokenCounter | None = None,
    options: ChunkingOptions | None = None,
    title: str = "",
) -> list[Chunk]:
    """The chunks of `text` (a document titled `title`), in order."""
    counter = counter or WordCounter()
    options = options or ChunkingOptions()
    limit = min(options.max_tokens or counter.max_tokens, counter.max_tokens)
    title_words = title.split()
    fixed = counter.special_tokens + sum(counter.counts(title_words))
    texts: list[str] = []
    for section in sections(text, title):
        heading = HEADING_SEPARATOR.join(section.headings)
        heading_tokens = sum(counter.counts(heading.split())) if heading else 0
        budget = max(limit - fixed - heading_tokens, options.min_body_tokens)
        for window in _windows(section.body, counter, budget, options.overlap_tokens):
            texts.append(f"{heading}\n{window}" if heading else window)
    return [Chunk(ordinal, text) for ordinal, text in enumerate(texts)]


def _windows(body: str, counter: TokenCounter, budget: int, overlap: int) -> Iterator[str]:
    pieces = [
        piece
        for words, line_start in units(body)
        for piece in _bounded(words, counter.counts(words), budget, line_start)
    ]
    current: list[_Piece] = []
    size = 0
    fresh = 0  # pieces in `current` that no earlier window holds
    for piece in pieces:
        if current and size + piece.tokens > budget:
            yield _join(current)
            current, size = _overlap(current, min(overlap, budget - piece.tokens))
            fresh = 0
        current.append(piece)
        size += piece.tokens
        fresh += 1
    if current and fresh:
        yield _join(current)


@dataclass(frozen=True)
class _Piece:
    words: list[str]
    tokens: int
    line_start: bool


def _bounded(
    words: list[str], counts: list[int], budget: int, line_start: bool
) -> Iterator[_Piece]:
    """A sentence as runs of words of at most `budget` tokens each."""
    run: list[str] = []
    size = 0
    for word, tokens in zip(words, counts, strict=True):
        if tokens > budget:  # a word longer than a window: character runs
            if run:
                yield _Piece(run, size, line_start)
                run, size, line_start = [], 0, False
            for start in range(0, len(word), budget):
                piece = word[start : start + budget]
                yield _Piece([piece], len(piece), line_start)  # a token covers >= 1 character
                line_start = False
            continue
        if run and size + tokens > budget:
            yield _Piece(run, size, line_start)
            run, size, line_start = [], 0, False
        run.append(word)
        size += tokens
    if run:
        yield _Piece(run, size, line_start)


def _overlap(window: list[_Piece], budget: int) -> tuple[list[_Piece], int]:
    """The trailing pieces of `window` that fit in `budget` tokens."""
    kept: list[_Piece] = []
    size = 0
    for piece in reversed(window):
        if size + piece.tokens > budget:
            break
        kept.insert(0, piece)
        size += piece.tokens
    return kept, size


def _join(window: list[_Piece]) -> str:
    """Words joined by spaces; a piece that starts a line starts one here too."""
    text = ""
    for i, piece in enumerate(window):
        separator = "" if i == 0 else "\n" if piece.line_start else " "
        text += separator + " ".join(piece.words)
    return text


def normalise_space(text: str) -> str:
    return _SPACE.sub(" ", text).strip()

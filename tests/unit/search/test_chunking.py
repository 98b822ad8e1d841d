"""Chunker rules: token-bounded windows, overlap, sections with heading paths,
every word kept, stable ordinals."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from services.search.chunking import (
    ChunkingOptions,
    WordCounter,
    chunk_text,
    sections,
    split_sentences,
)

words = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
sentence = st.lists(words, min_size=1, max_size=30).map(lambda ws: " ".join(ws) + ".")
documents = st.lists(sentence, min_size=0, max_size=40).map(" ".join)
limits = st.integers(min_value=8, max_value=60).flatmap(
    lambda m: st.tuples(st.just(m), st.integers(0, m - 1))
)


@dataclass(frozen=True)
class LetterCounter:
    """A word costs one token per two letters (rounded up): words differ in cost,
    as WordPiece ones do."""

    max_tokens: int = 40
    special_tokens: int = 2

    def counts(self, words: Sequence[str]) -> list[int]:
        return [(len(w) + 1) // 2 for w in words]


def body_tokens(text: str, counter: LetterCounter) -> int:
    return sum(counter.counts(text.split()))


@settings(max_examples=200, deadline=None)
@given(documents, limits, st.sampled_from(["", "A title", "a much longer document title"]))
def test_windows_fit_the_model_input_lose_no_word_and_are_ordered(
    text: str, limit: tuple[int, int], title: str
) -> None:
    room = LetterCounter().special_tokens + body_tokens(title, LetterCounter())
    counter = LetterCounter(max_tokens=limit[0] + room)  # words (<= 4 tokens) fit whole
    opts = ChunkingOptions(overlap_tokens=limit[1], min_body_tokens=1)
    chunks = chunk_text(text, counter, opts, title)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    fixed = counter.special_tokens + body_tokens(title, counter)
    assert all(0 < fixed + body_tokens(c.text, counter) <= counter.max_tokens for c in chunks)
    covered = " ".join(c.text for c in chunks).split()
    assert set(text.split()) <= set(covered)
    assert bool(chunks) == bool(text.split())


@settings(max_examples=100, deadline=None)
@given(documents, limits)
def test_chunking_is_deterministic(text: str, limit: tuple[int, int]) -> None:
    counter = WordCounter(max_tokens=limit[0])
    opts = ChunkingOptions(overlap_tokens=limit[1], min_body_tokens=1)
    assert chunk_text(text, counter, opts) == chunk_text(text, counter, opts)


def test_consecutive_windows_overlap_by_whole_sentences() -> None:
    text = " ".join(f"Sentence {i} has five words." for i in range(20))
    chunks = chunk_text(text, WordCounter(max_tokens=20), ChunkingOptions(overlap_tokens=5))
    for before, after in itertools.pairwise(chunks):
        first_sentence = " ".join(after.text.split()[:5])
        assert first_sentence in before.text
    assert all(c.text.endswith(".") for c in chunks)


def test_a_sentence_longer_than_a_window_is_cut_into_runs() -> None:
    chunks = chunk_text(
        "word " * 25,
        WordCounter(max_tokens=10),
        ChunkingOptions(overlap_tokens=0, min_body_tokens=1),
    )
    assert [len(c.text.split()) for c in chunks] == [10, 10, 5]


def test_a_word_longer_than_a_window_is_cut_into_character_runs() -> None:
    counter = LetterCounter(max_tokens=12, special_tokens=2)
    chunks = chunk_text("x" * 50, counter, ChunkingOptions(overlap_tokens=0, min_body_tokens=1))
    assert "".join(c.text for c in chunks) == "x" * 50
    assert all(2 + body_tokens(c.text, counter) <= 12 for c in chunks)


def test_the_title_counts_against_the_model_input() -> None:
    counter = WordCounter(max_tokens=20)
    untitled = chunk_text(
        "one two three four five. " * 8, counter, ChunkingOptions(min_body_tokens=1)
    )
    titled = chunk_text(
        "one two three four five. " * 8,
        counter,
        ChunkingOptions(min_body_tokens=1),
        title="six words of title right here",
    )
    assert max(len(c.text.split()) for c in untitled) == 20
    assert max(len(c.text.split()) for c in titled) <= 14


def test_sentences_split_on_ends_blank_lines_and_list_items() -> None:
    assert split_sentences("One. Two!\n\nthree\nfour") == [["One."], ["Two!"], ["three", "four"]]
    assert split_sentences("Steps:\n- first\n- second\n1. third") == [
        ["Steps:"],
        ["-", "first"],
        ["-", "second"],
        ["1.", "third"],
    ]


def test_markdown_headings_make_sections_with_their_path() -> None:
    text = (
        "# Guide\n\nIntro text.\n\n## Install\n\nRun make.\n\n### On Debian\n\nUse apt.\n\n"
        "## Use\n\nCall it.\n\n```sh\n# not a heading\nls\n```\n\nSetext\n------\n\nBody."
    )
    found = sections(text, title="guide")
    assert [(s.headings, s.body.splitlines()[0]) for s in found] == [
        ((), "Intro text."),
        (("Install",), "Run make."),
        (("Install", "On Debian"), "Use apt."),
        (("Use",), "Call it."),
        (("Setext",), "Body."),
    ]
    assert "# not a heading" in found[3].body


def test_a_chunk_opens_with_its_heading_path() -> None:
    text = "# Search\n\n## Row-level security\n\nTenants are kept apart by policies."
    chunks = chunk_text(text, WordCounter(), title="Platform")
    assert [c.text for c in chunks] == [
        "Search > Row-level security\nTenants are kept apart by policies."
    ]


def test_blank_text_has_no_chunks() -> None:
    assert chunk_text("   \n\n ") == []


def test_unchanged_prefix_keeps_its_chunks_and_hashes() -> None:
    counter, opts = WordCounter(max_tokens=12), ChunkingOptions(overlap_tokens=3, min_body_tokens=1)
    base = " ".join(f"Line {i} of the text." for i in range(12))
    longer = chunk_text(base + " A new closing sentence.", counter, opts)
    original = chunk_text(base, counter, opts)
    same = [a.content_hash for a, b in zip(original, longer, strict=False) if a == b]
    assert len(same) >= len(original) - 1


def test_minilm_counter_counts_wordpiece_tokens_word_by_word() -> None:
    from services.platform.minilm import MiniLmOnnxEmbedder

    embedder = MiniLmOnnxEmbedder()
    counter = embedder.token_counter
    text = "Row-level security keeps tenants' chunks apart (pgvector, HNSW)."
    encoding = embedder._tokenizer.encode(text)  # one short text: no padding
    assert (counter.max_tokens, counter.special_tokens) == (128, 2)
    assert sum(counter.counts(text.split())) + 2 == len(encoding.ids)


def test_a_heading_with_nothing_under_it_is_kept_as_text() -> None:
    # A one-line document that merely starts with "#" (a comment, a hashtag).
    chunks = chunk_text("# How to send help() to stderr: redirect it.", WordCounter())
    assert [c.text for c in chunks] == ["# How to send help() to stderr: redirect it."]
    trailing = chunk_text("Body text.\n\n## Last words", WordCounter())
    assert [c.text for c in trailing] == ["Body text.", "## Last words"]


markdown_lines = st.lists(
    st.one_of(
        sentence,
        words.map(lambda w: f"# {w}"),
        words.map(lambda w: f"## {w} {w}"),
        st.just(""),
        st.just("```"),
        words.map(lambda w: f"- {w}"),
    ),
    max_size=30,
).map("\n".join)


@settings(max_examples=200, deadline=None)
@given(markdown_lines)
def test_markdown_loses_no_word(text: str) -> None:
    chunks = chunk_text(text, WordCounter(max_tokens=20), ChunkingOptions(min_body_tokens=1))
    covered = set(" ".join(c.text for c in chunks).split())
    assert {w.strip("#") for w in text.split() if w.strip("#")} <= {w.strip("#") for w in covered}

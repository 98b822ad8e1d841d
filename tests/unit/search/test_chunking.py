"""Chunker rules: bounded windows, overlap, every word kept, stable ordinals."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from services.search.chunking import ChunkingOptions, chunk_text, split_sentences

words = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
sentence = st.lists(words, min_size=1, max_size=30).map(lambda ws: " ".join(ws) + ".")
documents = st.lists(sentence, min_size=0, max_size=40).map(" ".join)
options = st.integers(min_value=2, max_value=60).flatmap(
    lambda m: st.builds(ChunkingOptions, max_words=st.just(m), overlap_words=st.integers(0, m - 1))
)


@settings(max_examples=200, deadline=None)
@given(documents, options)
def test_windows_are_bounded_ordered_and_lose_no_word(text: str, opts: ChunkingOptions) -> None:
    chunks = chunk_text(text, opts)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(0 < len(c.text.split()) <= opts.max_words for c in chunks)
    covered = " ".join(c.text for c in chunks).split()
    assert set(text.split()) <= set(covered)
    assert bool(chunks) == bool(text.split())


@settings(max_examples=100, deadline=None)
@given(documents, options)
def test_chunking_is_deterministic(text: str, opts: ChunkingOptions) -> None:
    assert chunk_text(text, opts) == chunk_text(text, opts)


def test_consecutive_windows_overlap_by_whole_sentences() -> None:
    text = " ".join(f"Sentence {i} has five words." for i in range(20))
    chunks = chunk_text(text, ChunkingOptions(max_words=20, overlap_words=5))
    for before, after in itertools.pairwise(chunks):
        first_sentence = " ".join(after.text.split()[:5])
        assert first_sentence in before.text
    assert all(c.text.endswith(".") for c in chunks)


def test_a_sentence_longer_than_a_window_is_cut_into_runs() -> None:
    chunks = chunk_text("word " * 25, ChunkingOptions(max_words=10, overlap_words=0))
    assert [len(c.text.split()) for c in chunks] == [10, 10, 5]


def test_sentences_split_on_ends_and_blank_lines() -> None:
    assert split_sentences("One. Two!\n\nthree\nfour") == [["One."], ["Two!"], ["three", "four"]]


def test_blank_text_has_no_chunks() -> None:
    assert chunk_text("   \n\n ") == []


def test_unchanged_prefix_keeps_its_chunks_and_hashes() -> None:
    opts = ChunkingOptions(max_words=12, overlap_words=3)
    base = " ".join(f"Line {i} of the text." for i in range(12))
    longer = chunk_text(base + " A new closing sentence.", opts)
    original = chunk_text(base, opts)
    same = [a.content_hash for a, b in zip(original, longer, strict=False) if a == b]
    assert len(same) >= len(original) - 1

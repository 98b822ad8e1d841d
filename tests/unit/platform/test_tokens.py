"""Token counting in the configured model's encoding: tiktoken's model table,
the fallback for names it does not know, and encodings that load offline."""

from __future__ import annotations

import socket
import sys

import pytest

from services.platform import tokens

RUSSIAN = "Привет, как дела? Это тест токенизации."  # 18 tokens in cl100k, 12 in o200k


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-oss-20b", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),  # a router's provider prefix
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("llama3.1:8b", tokens.FALLBACK_ENCODING),
        ("mistral-small", tokens.FALLBACK_ENCODING),
        ("extractive-v2", tokens.FALLBACK_ENCODING),
        ("", tokens.FALLBACK_ENCODING),
    ],
)
def test_the_model_picks_its_encoding(model: str, encoding: str) -> None:
    assert tokens.encoding_name_for(model) == encoding
    assert tokens.encoding_for(model).name == encoding


def test_counts_differ_by_encoding() -> None:
    assert tokens.count_tokens(RUSSIAN, "gpt-4") == 18
    assert tokens.count_tokens(RUSSIAN, "gpt-4o") == 12
    assert tokens.count_tokens(RUSSIAN) == 18  # no model: the fallback, cl100k_base
    assert tokens.count_tokens("", "gpt-4o") == 0
    assert tokens.count_tokens("hello world", "gpt-4") == 2  # tiktoken: [15339, 1917]


def test_the_word_counter_counts_words_as_inside_a_text() -> None:
    count = tokens.word_counter("gpt-4o")
    assert count(["hello", "world"]) == [1, 1]
    assert count(["Привет,"]) == [len(tokens.encoding("o200k_base").encode_ordinary(" Привет,"))]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_both_encodings_load_offline_and_tiktoken_is_not_used(no_network: None) -> None:
    tokens.encoding.cache_clear()
    for name in ("cl100k_base", "o200k_base"):
        assert tokens.encoding(name).encode_ordinary("offline") != []
    assert "tiktoken" not in sys.modules  # it would fetch its BPE files at run time

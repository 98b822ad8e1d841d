"""Text generation behind a small `Generator` protocol.

Two implementations: `services.task.extractive.ExtractiveGenerator` (the
offline default, model id `extractive-v2`: deterministic, quotes the retrieved
sentences that answer the question or abstains, so `rag.answer` works with no
API key) and
`services.task.openai_compat.OpenAICompatibleGenerator` (any OpenAI-compatible
chat-completions endpoint, streaming, through the `openai` SDK).
`generator_from_settings` picks one from the `generator` settings
(`PROTOMESH_GENERATOR_*`). Tokens are counted in the model's own encoding
(`count_tokens`, services/platform/tokens.py), offline.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.platform import tokens
from services.platform.config import GeneratorSettings

OnDelta = Callable[[str], Awaitable[None]]

_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_STOPWORD_TEXT = (
    "a an and are as at be by can do does for from has have how i in is it its of on or "
    "that the their there these this to was were what when where which who why will with "
    "you your about into than then them they not no"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Source:
    """A retrieved chunk the answer may cite as `[index]`."""

    index: int
    document: str
    chunk_id: str
    title: str
    text: str


@dataclass(frozen=True)
class Prompt:
    question: str
    sources: Sequence[Source]
    instructions: str = (
        "Answer the question using only the numbered sources. End every sentence with the "
        "number of the source that supports it, like [1]. If the sources do not contain the "
        "answer, say so."
    )

    def messages(self) -> list[dict[str, str]]:
        context = "\n\n".join(f"[{s.index}] {s.title}\n{s.text}" for s in self.sources)
        return [
            {"role": "system", "content": self.instructions},
            {"role": "user", "content": f"Sources:\n{context}\n\nQuestion: {self.question}"},
        ]

    def text(self) -> str:
        return "\n".join(m["content"] for m in self.messages())


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    estimated: bool


@dataclass(frozen=True)
class Generation:
    text: str
    model: str
    usage: Usage


class Generator(Protocol):
    """Produces an answer for a prompt, streaming text through `on_delta`."""

    model: str

    async def generate(
        self, prompt: Prompt, on_delta: OnDelta, max_output_tokens: int
    ) -> Generation: ...


def count_tokens(text: str, model: str = "") -> int:
    """Tokens of `text` in `model`'s encoding (tiktoken's table; cl100k_base for a
    model it does not know, or none), counted offline."""
    return tokens.count_tokens(text, model)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS and len(w) > 1}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def cite(sentence: str, index: int) -> str:
    """`sentence` with a `[index]` marker before its closing punctuation."""
    body = sentence.rstrip()
    end = ""
    while body and body[-1] in ".!?":
        end = body[-1] + end
        body = body[:-1]
    return f"{body} [{index}]{end}"


def generator_from_settings(config: GeneratorSettings) -> Generator:
    """A `base_url`: the OpenAI-compatible client; else the offline extractive one."""
    if not config.base_url:
        from services.task.extractive import ExtractiveGenerator, minilm_encoder

        return ExtractiveGenerator(minilm_encoder())
    from services.task.openai_compat import OpenAICompatibleGenerator

    generator: Generator = OpenAICompatibleGenerator(
        base_url=config.base_url,
        model=config.model,
        api_key=config.api_key,
        timeout_seconds=config.timeout_seconds,
        max_retries=config.max_retries,
    )
    return generator

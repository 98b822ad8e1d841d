"""The offline extractive generator: quotes the sentences that answer, cites them
so verification passes, abstains when the sources do not answer."""

from __future__ import annotations

import pytest

from services.task import citations
from services.task.extractive import (
    ABSTENTION,
    ExtractiveGenerator,
    candidates,
    minilm_encoder,
    split_heading,
    term_shares,
    terms,
)
from services.task.generation import Prompt, Source, count_tokens

SOURCES = [
    Source(1, "documents/a", "a-0", "A", "Cats sleep sixteen hours a day. Cats purr."),
    Source(2, "documents/b", "b-0", "B", "Dogs bark at strangers. Dogs love walks."),
]
PLATFORM = [
    Source(
        1,
        "documents/platform",
        "p-0",
        "Platform",
        "Tenant isolation > Row-level security\nEvery table enables and forces row-level security. "
        "A transaction sees only the rows of the tenant taken from the verified token.",
    ),
    Source(
        2,
        "documents/gateway",
        "g-0",
        "Gateway",
        'Quick start\n```sh\nprotomesh ask "how are tenants kept apart?"\n```\n'
        "The gateway maps gRPC statuses to HTTP ones.",
    ),
]


@pytest.fixture(scope="module")
def generator() -> ExtractiveGenerator:
    return ExtractiveGenerator(minilm_encoder())


async def ask(generator: ExtractiveGenerator, question: str, sources: list[Source]) -> str:
    deltas: list[str] = []

    async def collect(text: str) -> None:
        deltas.append(text)

    generation = await generator.generate(Prompt(question, sources), collect, 200)
    assert "".join(deltas) == generation.text
    assert generation.usage.output_tokens == count_tokens(generation.text)
    return generation.text


async def test_it_quotes_the_answering_sentence_with_a_verified_citation(
    generator: ExtractiveGenerator,
) -> None:
    first = await ask(generator, "How long do cats sleep?", SOURCES)
    assert first == await ask(generator, "How long do cats sleep?", SOURCES)  # deterministic
    assert first.startswith("Cats sleep sixteen hours a day [1].")
    checks = citations.verify(citations.extract(first, SOURCES)[0], SOURCES)
    assert checks
    assert all(c.supported for c in checks)


async def test_it_answers_in_other_words_through_stems_and_meaning(
    generator: ExtractiveGenerator,
) -> None:
    answer = await ask(generator, "How are tenants kept apart?", PLATFORM)
    assert "row-level security" in answer
    isolated = await ask(generator, "How is one tenant isolated from another?", PLATFORM)
    assert "row-level security" in isolated
    assert "[1]" in answer
    assert "protomesh ask" not in answer  # code, and a quote of the question, are not answers


async def test_it_abstains_when_the_sources_do_not_answer(generator: ExtractiveGenerator) -> None:
    assert await ask(generator, "What is the boiling point of mercury?", SOURCES) == ABSTENTION
    assert await ask(generator, "How do I bake sourdough bread?", PLATFORM) == ABSTENTION
    assert await ask(generator, "Anything?", []) == ABSTENTION


def test_heading_lines_are_context_not_quotes() -> None:
    assert split_heading("Tenant isolation > Row-level security\nBody text.") == (
        "Tenant isolation > Row-level security",
        "Body text.",
    )
    assert split_heading("A sentence that ends.\nMore.") == ("", "A sentence that ends.\nMore.")
    found = candidates(PLATFORM, "how are tenants kept apart?")
    assert [c.sentence for c in found] == [
        "Every table enables and forces row-level security.",
        "A transaction sees only the rows of the tenant taken from the verified token.",
        "The gateway maps gRPC statuses to HTTP ones.",
    ]
    assert found[0].heading == "Tenant isolation > Row-level security"


def test_terms_are_stemmed_content_words() -> None:
    assert terms("How are the tenants isolated?") == ["tenant", "isol"]
    found = candidates(PLATFORM)
    shares = term_shares("tenant isolation with row-level security", found)
    assert shares.whole[0] == max(shares.whole)

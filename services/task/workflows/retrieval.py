"""Shared steps of the answer workflows: hybrid search, rank/dedupe, and the
answer artifact with its citations and verification report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.task.v1 import task_service_pb2 as pb
from services.task import citations
from services.task.convert import struct
from services.task.execution import PermanentFailure, TaskContext
from services.task.generation import Source, words

_PERMANENT = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
}


def validate_filters(filters: Any) -> list[str]:
    if filters is None:
        return []
    if not isinstance(filters, Mapping):
        return ["filters must be an object of label: value"]
    labels = filters.get("labels", filters)
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        return ["filters.labels must map label names to string values"]
    return []


async def search(
    ctx: TaskContext, query: str, top_k: int, filters: Mapping[str, Any] | None
) -> list[search_pb.SearchResult]:
    """Hybrid search as the submitter; over-fetches so dedupe keeps `top_k`."""
    request = search_pb.SearchRequest(
        query=query[:1024], mode=search_pb.SEARCH_MODE_HYBRID, page_size=min(50, top_k * 2)
    )
    if filters:
        request.filter.labels.update(dict(filters.get("labels", filters)))
    down = ctx.downstream
    try:
        response = await ctx.call(
            down.search.Search(request, metadata=down.metadata(), timeout=down.timeout_seconds)
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() in _PERMANENT:
            raise PermanentFailure(f"search failed: {exc.details()}", exc.code().value[0]) from exc
        raise
    if response.degraded:
        await ctx.log(f"search degraded to keyword results: {response.degraded_reason}", "warning")
    return list(response.results)


def rank(results: Sequence[search_pb.SearchResult], top_k: int) -> list[Source]:
    """Best first, one per chunk id and per identical text, numbered from 1."""
    seen_chunks: set[str] = set()
    seen_texts: set[str] = set()
    sources: list[Source] = []
    for result in sorted(results, key=lambda r: -r.score):
        text = result.text or result.snippet
        fingerprint = " ".join(words(text))
        if result.chunk_id in seen_chunks or fingerprint in seen_texts or not fingerprint:
            continue
        seen_chunks.add(result.chunk_id)
        seen_texts.add(fingerprint)
        sources.append(
            Source(len(sources) + 1, result.document_name, result.chunk_id, result.title, text)
        )
        if len(sources) == top_k:
            break
    return sources


def cites_a_source(text: str) -> bool:
    """Whether generated text cites any source (an abstention cites none)."""
    found, _ = citations.extract(text, [])
    return bool(found)


def answer_artifact(
    artifact_id: str,
    name: str,
    text: str,
    sources: Sequence[Source],
    model: str,
    estimated: bool,
) -> tuple[pb.Artifact, dict[str, Any]]:
    """The answer (Markdown) + one data part per supported citation + the
    verification report; also returns the report."""
    found, uncited = citations.extract(text, sources)
    checks = citations.verify(found, sources)
    supported = [c for c in checks if c.supported]
    report: dict[str, Any] = {
        "kind": "verification",
        "citations": len(checks),
        "supported": len(supported),
        "unsupported": [c.as_dict() for c in checks if not c.supported],
        "uncited_sentences": uncited,
        "verified": len(supported) == len(checks) and bool(checks),
    }
    artifact = pb.Artifact(
        artifact_id=artifact_id,
        name=name,
        description="Answer grounded in the retrieved documents, with verified citations",
        metadata=struct({"model": model, "usage_estimated": estimated}),
    )
    artifact.parts.add(text=text, media_type="text/markdown")
    for check in supported:
        artifact.parts.add(
            data=struct(
                {
                    "kind": "citation",
                    "source": check.source,
                    "document": check.document,
                    "chunk_id": check.chunk_id,
                    "title": check.title,
                    "quote": check.quote,
                    "claim": check.claim,
                }
            ),
            media_type="application/json",
        )
    artifact.parts.add(data=struct(report), media_type="application/json")
    return artifact, report

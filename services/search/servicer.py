"""SearchService RPCs → the search rules (ranking.py) and store calls.

Auth, scopes, request validation (empty query, weights, page size, mode),
deadlines and error mapping happen in the platform's interceptor chain; the
tenant is always the verified caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from google.protobuf import timestamp_pb2

from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from services.platform.context import current_call, principal
from services.platform.errors import DeadlineExceeded, Unavailable
from services.platform.pagination import PageTokens
from services.search import metrics
from services.search.chunking import CHUNKER_VERSION
from services.search.embedders import EmbeddingError, GuardedEmbedder, Vector
from services.search.freshness import AppliedSequence
from services.search.indexer import Indexer
from services.search.ranking import (
    DEFAULT_RRF_K,
    DEFAULT_WEIGHT,
    SCORE_KEYWORD_WEIGHT,
    SCORE_VECTOR_WEIGHT,
    Fused,
    LegHit,
    parse_headline,
    rrf,
    score_fusion,
    single_leg,
)
from services.search.store import ANY_FRESHNESS, Filters, Freshness, IndexBehind, SearchStore

DEFAULT_PAGE_SIZE = 10


@dataclass(frozen=True)
class LegDepth:
    """How many candidates each leg contributes to the fusion; results past them are
    not paged to. The keyword leg ranks every match to sort them anyway, so a deeper
    cut costs nothing measurable (10.7 vs 10.5 ms at 100k chunks) and keeps chunks that
    are in both legs but deep in the keyword one. Measured at 100k chunks
    (bench/search.py data, 100 queries), keyword 300: overlap@10 with exact RRF over
    full legs 0.903 / 0.972 / 0.998 with 100 / 150 / 300 vector candidates (0.82 with
    100 / 100), the vector leg taking 3.6 / 4.4 / 6.2 ms. But at 20k chunks (2k per
    tenant) a vector LIMIT of 150 tips PostgreSQL's plan off the HNSW index: the leg
    takes 7.6 ms instead of 1.7 and Search 58 ms instead of 7.6, so it stays at 100."""

    keyword: int = 300
    vector: int = 100


DEFAULT_DEPTH = LegDepth()
# Time kept back from a read-your-writes wait for the search itself.
SEARCH_MARGIN_SECONDS = 0.5
QUERY_CACHE_SIZE = 1024


@dataclass
class Outcome:
    results: list[pb.SearchResult]
    next_page_token: str
    degraded: bool
    degraded_reason: str
    applied_sequence: int
    mode: int


@dataclass
class QueryVectors:
    """A small LRU of query embeddings (the same query is often asked again)."""

    size: int = QUERY_CACHE_SIZE
    entries: OrderedDict[tuple[str, str], Vector] = field(default_factory=OrderedDict)

    def get(self, key: tuple[str, str]) -> Vector | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: tuple[str, str], vector: Vector) -> None:
        self.entries[key] = vector
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


def _datetime(stamp: timestamp_pb2.Timestamp) -> Any:
    return stamp.ToDatetime(tzinfo=UTC)


def filters_of(request: pb.SearchRequest) -> Filters:
    f = request.filter
    return Filters(
        labels=dict(f.labels) or None,
        document_names=list(f.document_names) or None,
        min_update_time=_datetime(f.min_update_time) if f.HasField("min_update_time") else None,
        max_update_time=_datetime(f.max_update_time) if f.HasField("max_update_time") else None,
    )


def binding_of(request: pb.SearchRequest) -> dict[str, Any]:
    """What a page token is bound to: everything but the page size and position."""
    f = request.filter
    fusion = request.fusion or pb.FUSION_SCORE
    default_kw, default_vw = (
        (SCORE_KEYWORD_WEIGHT, SCORE_VECTOR_WEIGHT)
        if fusion == pb.FUSION_SCORE
        else (DEFAULT_WEIGHT, DEFAULT_WEIGHT)
    )
    return {
        "q": request.query,
        "m": request.mode or pb.SEARCH_MODE_HYBRID,
        "f": fusion,
        "kw": request.bm25_weight if request.HasField("bm25_weight") else default_kw,
        "vw": request.vector_weight if request.HasField("vector_weight") else default_vw,
        "k": request.rrf_k or DEFAULT_RRF_K,
        "l": sorted(f.labels.items()),
        "d": sorted(f.document_names),
        "t0": f.min_update_time.ToJsonString() if f.HasField("min_update_time") else "",
        "t1": f.max_update_time.ToJsonString() if f.HasField("max_update_time") else "",
    }


class SearchServicer(pb_grpc.SearchServiceServicer):
    def __init__(
        self,
        store: SearchStore,
        embedder: GuardedEmbedder,
        page_tokens: PageTokens,
        applied: AppliedSequence,
        indexer: Indexer | None = None,
        depth: LegDepth = DEFAULT_DEPTH,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.page_tokens = page_tokens
        self.applied = applied
        self.indexer = indexer
        self.depth = depth
        self.query_vectors = QueryVectors()

    # -- RPCs ----------------------------------------------------------------------

    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:
        outcome = await self._search(request)
        return pb.SearchResponse(
            results=outcome.results,
            next_page_token=outcome.next_page_token,
            degraded=outcome.degraded,
            degraded_reason=outcome.degraded_reason,
            applied_sequence=outcome.applied_sequence,
            mode=outcome.mode,  # type: ignore[arg-type]
        )

    async def SearchStream(
        self, request: pb.SearchRequest, context: Any
    ) -> AsyncIterator[pb.SearchStreamResponse]:
        outcome = await self._search(request)
        for result in outcome.results:
            yield pb.SearchStreamResponse(result=result)
        yield pb.SearchStreamResponse(
            summary=pb.SearchSummary(
                result_count=len(outcome.results),
                next_page_token=outcome.next_page_token,
                degraded=outcome.degraded,
                degraded_reason=outcome.degraded_reason,
                applied_sequence=outcome.applied_sequence,
                mode=outcome.mode,  # type: ignore[arg-type]
            )
        )

    async def GetIndexStatus(
        self, request: pb.GetIndexStatusRequest, context: Any
    ) -> pb.IndexStatus:
        tenant = principal().tenant_id
        checkpoint = await self.store.checkpoint()
        counts = await self.store.tenant_status(tenant, CHUNKER_VERSION)
        head = max(checkpoint.head_sequence, checkpoint.applied_sequence)
        status = pb.IndexStatus(
            applied_sequence=checkpoint.applied_sequence,
            head_sequence=head,
            lag=head - checkpoint.applied_sequence,
            document_count=counts["documents"],
            chunk_count=counts["chunks"],
            pending_embedding_count=counts["pending"],
            embedder_model=self.embedder.model_id,
            embedding_dimensions=self.embedder.dimensions,
            degraded=self.embedder.breaker.is_open,
            degraded_reason=self.embedder.breaker.describe(),
            chunker_version=CHUNKER_VERSION,
            outdated_document_count=counts["outdated"],
            rebuild_pending_document_count=counts["outdated"] if counts["rebuilding"] else 0,
        )
        if checkpoint.last_applied_time is not None:
            status.last_applied_time.FromDatetime(checkpoint.last_applied_time)
        return status

    async def ReindexTenant(
        self, request: pb.ReindexTenantRequest, context: Any
    ) -> pb.ReindexTenantResponse:
        documents, chunks = await self.store.reindex_tenant(principal().tenant_id, CHUNKER_VERSION)
        if self.indexer is not None:
            self.indexer.embeddings_due.set()
            self.indexer.rebuilds_due.set()
        return pb.ReindexTenantResponse(queued_chunk_count=chunks, rebuild_document_count=documents)

    # -- search --------------------------------------------------------------------

    async def _search(self, request: pb.SearchRequest) -> Outcome:
        started = time.monotonic()
        fresh = await self._wait_for(request.min_sequence) if request.min_sequence else None
        try:
            return await self._search_fresh(request, fresh or ANY_FRESHNESS)
        except IndexBehind as behind:
            raise _index_behind(
                request.min_sequence, behind.applied_sequence, time.monotonic() - started
            ) from None

    async def _search_fresh(self, request: pb.SearchRequest, fresh: Freshness) -> Outcome:
        tenant = principal().tenant_id
        binding = binding_of(request)
        offset = 0
        if request.page_token:
            offset = int(self.page_tokens.decode(request.page_token, tenant, binding).get("o", 0))
        page_size = request.page_size if request.HasField("page_size") else DEFAULT_PAGE_SIZE
        mode = request.mode or pb.SEARCH_MODE_HYBRID

        filters = filters_of(request)
        depth = self.depth
        degraded_reason = ""
        # Three things overlap: the keyword leg (it needs no vector), the query's
        # embedding, and the vector leg's transaction set-up, which waits for the
        # vector on a connection of its own.
        keyword_leg = (
            asyncio.ensure_future(
                self.store.keyword_leg(tenant, request.query, depth.keyword, filters, fresh)
            )
            if mode != pb.SEARCH_MODE_VECTOR
            else None
        )
        embedding = (
            asyncio.ensure_future(self._query_vector(request.query))
            if mode in (pb.SEARCH_MODE_HYBRID, pb.SEARCH_MODE_VECTOR)
            else None
        )
        query_vector = asyncio.ensure_future(_vector_of(embedding)) if embedding else None
        try:
            vector: list[LegHit[int]] = []
            if embedding is not None and query_vector is not None:
                hits = await self.store.vector_leg(
                    tenant, query_vector, depth.vector, filters, fresh
                )
                degraded_reason = (await embedding)[1]
                vector = hits or []
            if keyword_leg is not None:
                keyword = await keyword_leg
            else:  # VECTOR mode: keyword only when the vector leg cannot answer
                if not degraded_reason and not vector:
                    degraded_reason = "no chunk matching the filter has an embedding yet"
                keyword = (
                    await self.store.keyword_leg(
                        tenant, request.query, depth.keyword, filters, fresh
                    )
                    if degraded_reason
                    else []
                )
        finally:
            for pending in (keyword_leg, query_vector, embedding):
                if pending is not None and not pending.done():
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await pending
        ran = mode if not degraded_reason else pb.SEARCH_MODE_KEYWORD
        metrics.QUERIES.labels(_mode_label(mode), _mode_label(ran)).inc()
        if degraded_reason:
            metrics.DEGRADED.labels(metrics.degraded_reason_label(degraded_reason)).inc()
        fused: list[Fused[int]]
        if ran == pb.SEARCH_MODE_HYBRID and binding["f"] == pb.FUSION_RRF:
            fused = rrf(keyword, vector, binding["k"], binding["kw"], binding["vw"])
        elif ran == pb.SEARCH_MODE_HYBRID:
            fused = score_fusion(keyword, vector, binding["kw"], binding["vw"])
        elif ran == pb.SEARCH_MODE_VECTOR:
            fused = single_leg(vector, "vector")
        else:
            fused = single_leg(keyword, "keyword")

        page = fused[offset : offset + page_size]
        results = await self._results(tenant, page, request.query, fresh)
        next_token = ""
        if offset + page_size < len(fused):
            next_token = self.page_tokens.encode(tenant, binding, {"o": offset + page_size})
        return Outcome(
            results=results,
            next_page_token=next_token,
            degraded=bool(degraded_reason),
            degraded_reason=degraded_reason,
            applied_sequence=max(self.applied.value, request.min_sequence),
            mode=ran,
        )

    async def _wait_for(self, sequence: int) -> Freshness:
        """Waits until the index the searches read has applied `sequence`; the reads
        then check it again on their own connections until the same deadline."""
        remaining = current_call().time_remaining()
        budget = 10.0 if remaining is None else max(remaining - SEARCH_MARGIN_SECONDS, 0.0)
        started = time.monotonic()
        if await self.applied.wait_for(sequence, budget):
            return Freshness(sequence, started + budget)
        applied = self.applied.value
        waited = time.monotonic() - started
        if self.indexer is not None and not self.indexer.connected.is_set():
            raise Unavailable(
                f"the search index has applied the change feed up to {applied}, not yet "
                f"min_sequence {sequence}, and its indexer is not connected to the documents "
                f"service; retry later",
                reason="INDEX_NOT_CONNECTED",
                metadata={"applied_sequence": str(applied), "min_sequence": str(sequence)},
            )
        raise _index_behind(sequence, applied, waited)

    async def _query_vector(self, query: str) -> tuple[Vector | None, str]:
        """(vector, '') or (None, why the vector leg cannot run)."""
        key = (self.embedder.model_id, query)
        cached = self.query_vectors.get(key)
        if cached is not None:
            return cached, ""
        if self.embedder.breaker.is_open:
            return None, self.embedder.breaker.describe()
        try:
            vector = await self.embedder.embed_query(query)
        except EmbeddingError as exc:
            return None, f"query embedding failed: {exc}"
        self.query_vectors.put(key, vector)
        return vector, ""

    async def _results(
        self, tenant: str, page: Sequence[Fused[int]], query: str, fresh: Freshness
    ) -> list[pb.SearchResult]:
        if not page:
            return []
        rows = await self.store.page_rows(tenant, [f.key for f in page], query, fresh)
        results = []
        for fused in page:
            row = rows.get(fused.key)
            if row is None:  # deleted since the legs ran
                continue
            snippet, ranges = parse_headline(row["headline"])
            results.append(
                pb.SearchResult(
                    document_name=row["document_name"],
                    chunk_id=f"{row['document_name']}/chunks/{row['ordinal']}",
                    ordinal=row["ordinal"],
                    title=row["title"],
                    snippet=snippet,
                    highlights=[pb.TextRange(start=s, end=e) for s, e in ranges],
                    score=fused.score,
                    keyword_rank=fused.keyword_rank,
                    keyword_score=fused.keyword_score,
                    vector_rank=fused.vector_rank,
                    vector_score=fused.vector_score,
                    text=row["text"],
                    labels=row["labels"],
                )
            )
        return results


async def _vector_of(embedding: Awaitable[tuple[Vector | None, str]]) -> Vector | None:
    """The vector of a `_query_vector` outcome (None when the leg cannot run)."""
    return (await embedding)[0]


def _index_behind(sequence: int, applied: int, waited: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"the search index reached sequence {applied} but not min_sequence {sequence} "
        f"within the deadline (waited {waited:.2f}s); retry with a longer deadline",
        reason="INDEX_BEHIND",
        metadata={"applied_sequence": str(applied), "min_sequence": str(sequence)},
    )


def _mode_label(mode: int) -> str:
    return pb.SearchMode.Name(mode).removeprefix("SEARCH_MODE_").lower()

"""How to serve SearchService: its descriptor, servicer registration and factory.

The process runs the servicer plus background loops: the indexer's feed loop,
embedding pass and rebuilds (unless `PROTOMESH_SEARCH_INDEXER=off`, e.g. on extra
query replicas) and the listener that tracks the applied sequence for
read-your-writes. Searches read through a pool of their own when
`PROTOMESH_SEARCH_READ_DATABASE_URL` is set (a streaming replica); everything
else uses the primary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2, search_service_pb2_grpc
from services.platform.db import Pool, create_pool
from services.platform.pagination import PageTokens, page_token_secret
from services.platform.server import Runtime, ServiceParts, ServiceSpec, direct_dsn
from services.search.embedders import (
    INDEX_DIMENSIONS,
    Embedder,
    GuardedEmbedder,
    embedder_from_settings,
)
from services.search.freshness import AppliedSequence
from services.search.indexer import DocumentFetcher, Indexer, IndexerOptions
from services.search.servicer import DEFAULT_DEPTH, LegDepth, SearchServicer
from services.search.store import SearchStore, VectorTuning


def feed_opener(runtime: Runtime) -> Callable[[int], AsyncIterator[doc_pb.WatchChangesResponse]]:
    """WatchChanges over gRPC as the service identity (scope documents:watch-all)."""
    stub = runtime.clients.stub(
        "document",
        doc_pb.DESCRIPTOR.services_by_name["DocumentService"],
        doc_grpc.DocumentServiceStub,
    )

    async def open_feed(after_sequence: int) -> AsyncIterator[doc_pb.WatchChangesResponse]:
        call = stub.WatchChanges(
            doc_pb.WatchChangesRequest(after_sequence=after_sequence, all_tenants=True),
            metadata=(("authorization", f"Bearer {runtime.identity.token()}"),),
        )
        try:
            async for message in call:
                yield message
        finally:
            call.cancel()

    return open_feed


def document_fetcher(runtime: Runtime) -> DocumentFetcher:
    """BatchGetDocuments acting for the tenant (a delegated token with
    documents:read), so row-level security applies in the documents service."""
    stub = runtime.clients.stub(
        "document",
        doc_pb.DESCRIPTOR.services_by_name["DocumentService"],
        doc_grpc.DocumentServiceStub,
    )

    async def fetch(tenant: str, names: Sequence[str]) -> list[doc_pb.Document]:
        token = runtime.identity.token_for(tenant, "service:search", "documents:read")
        documents: list[doc_pb.Document] = []
        for start in range(0, len(names), 100):  # BatchGetDocuments takes 100 names
            response = await stub.BatchGetDocuments(
                doc_pb.BatchGetDocumentsRequest(names=names[start : start + 100]),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=30,
            )
            documents.extend(response.documents)
        return documents

    return fetch


def make_spec(
    embedder_factory: Callable[[], Embedder] | None = None,
    indexer_options: IndexerOptions | None = None,
    tuning: VectorTuning | None = None,
    run_indexer: bool | None = None,
    depth: LegDepth = DEFAULT_DEPTH,
    guarded: Callable[[Embedder], GuardedEmbedder] = GuardedEmbedder,
) -> ServiceSpec:
    """SearchService with its parts (tests pass the hashing embedder and short intervals)."""

    async def build(runtime: Runtime) -> ServiceParts:
        inner = (
            embedder_factory()
            if embedder_factory
            else embedder_from_settings(runtime.settings.embedder)
        )
        if inner.dimensions != INDEX_DIMENSIONS:
            raise RuntimeError(
                f"embedder {inner.model_id} makes {inner.dimensions}-d vectors; the index "
                f"holds {INDEX_DIMENSIONS}-d ones (PROTOMESH_EMBEDDER_DIMENSIONS)"
            )
        embedder = guarded(inner)
        warm_up = getattr(inner, "embed_query", None)
        if warm_up is not None:  # the first search does not pay the model's first run
            await warm_up("warm up")
        settings = runtime.settings
        read_pool: Pool | None = None
        if settings.search_read_database_url:
            read_pool = await create_pool(
                settings.search_read_database_url,
                settings.db_pool_min,
                settings.db_pool_max,
                statement_cache_size=settings.db_statement_cache_size,
            )
        store = SearchStore(runtime.pool, tuning, read_pool)
        applied = AppliedSequence(store, direct_dsn(settings))
        indexing = runtime.settings.search_indexer if run_indexer is None else run_indexer
        indexer = (
            Indexer(
                store,
                embedder,
                feed_opener(runtime),
                indexer_options,
                document_fetcher(runtime),
            )
            if indexing
            else None
        )
        servicer = SearchServicer(
            store,
            embedder,
            PageTokens(page_token_secret(runtime.settings)),
            applied,
            indexer,
            depth,
        )
        background: list[Callable[[], Coroutine[Any, Any, None]]] = [applied.run]
        if indexer is not None:
            background += [indexer.run_feed, indexer.run_embeddings, indexer.run_rebuilds]
        return ServiceParts(
            servicer=servicer,
            background=background,
            close=read_pool.close if read_pool is not None else None,
        )

    return ServiceSpec(
        name="search",
        descriptor=search_service_pb2.DESCRIPTOR.services_by_name["SearchService"],
        add_to_server=search_service_pb2_grpc.add_SearchServiceServicer_to_server,
        build=build,
    )


SPEC = make_spec()

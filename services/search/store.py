"""Persistence of SearchService: the named queries in `sql/queries.sql`.

Search reads are one statement each, which sets the tenant for row-level
security itself (migration 0006), on `read_pool` when one is given (a streaming
replica: PROTOMESH_SEARCH_READ_DATABASE_URL); the indexer's writes run on the
primary as the `protomesh_search_indexer` role (its own policy), each applied
change together with the checkpoint in one transaction, which replication
carries to replicas as one unit too.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from pgvector import Vector

from services.platform.db import Connection, Pool, named_queries, tenant_transaction
from services.search.ranking import START_SEL, STOP_SEL, LegHit

APPLIED_CHANNEL = "search_applied"

HEADLINE_OPTIONS = (
    f"StartSel={START_SEL}, StopSel={STOP_SEL}, MaxWords=40, MinWords=18, "
    'ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'
)


Q = named_queries(Path(__file__).resolve().parent / "sql" / "queries.sql")
# The role whose RLS policy admits every tenant's chunks (migration 0002).
INDEXER_ROLE = "protomesh_search_indexer"
# How often a read transaction on a replica re-reads the checkpoint while that
# replica replays the WAL up to a search's min_sequence (replay lag is ms).
REPLAY_POLL_SECONDS = 0.01


def as_vector(vector: Sequence[float]) -> Vector:
    """A query parameter for pgvector's binary codec (registered on every pool).
    Wrapped, because a bare list or ndarray inside an array parameter would read
    as a nested dimension."""
    return vector if isinstance(vector, Vector) else Vector(list(vector))


@dataclass(frozen=True)
class Filters:
    """Search restrictions, as the legs' SQL parameters ($3..$6)."""

    labels: Mapping[str, str] | None = None
    document_names: Sequence[str] | None = None
    min_update_time: datetime | None = None
    max_update_time: datetime | None = None

    def params(self) -> tuple[Any, ...]:
        return (
            dict(self.labels) if self.labels else None,
            list(self.document_names) if self.document_names else None,
            self.min_update_time,
            self.max_update_time,
        )


@dataclass(frozen=True)
class VectorTuning:
    """How the filtered HNSW leg trades speed for recall (measured: docs/search.md)."""

    ef_search: int = 100
    max_scan_tuples: int = 50_000
    exact_fallback: bool = True


@dataclass(frozen=True)
class Freshness:
    """What a search's reads must see: the index at `min_sequence` or later (0: any),
    waited for until `deadline` (time.monotonic())."""

    min_sequence: int = 0
    deadline: float = math.inf


ANY_FRESHNESS = Freshness()


class IndexBehind(Exception):
    """The replica a read transaction landed on had not applied `min_sequence` by the
    deadline."""

    def __init__(self, applied_sequence: int) -> None:
        super().__init__(f"the replica has applied sequence {applied_sequence}")
        self.applied_sequence = applied_sequence


@dataclass(frozen=True)
class Checkpoint:
    applied_sequence: int
    head_sequence: int
    last_applied_time: datetime | None


@dataclass(frozen=True)
class NewChunk:
    ordinal: int
    text: str
    content_hash: str
    embedding: Sequence[float] | None = None  # computed before the write (rebuilds)


@dataclass(frozen=True)
class Outdated:
    """A document whose chunks an older chunker made, as the rebuild pass found it."""

    tenant_id: str
    document_name: str
    applied_sequence: int


@dataclass(frozen=True)
class DueChunk:
    id: int
    title: str
    text: str
    content_hash: str


async def _replayed(conn: Connection, fresh: Freshness) -> None:
    """Waits until the server of `conn` has applied `fresh.min_sequence`."""
    while True:
        applied: int = await conn.fetchval(Q["applied_sequence"])
        if applied >= fresh.min_sequence:
            return
        if time.monotonic() >= fresh.deadline:
            raise IndexBehind(applied)
        await asyncio.sleep(REPLAY_POLL_SECONDS)


class SearchStore:
    """`pool` is the primary (indexer, checkpoint, status, reindex requests);
    `read_pool` (default: `pool`) serves the search legs and result rows."""

    def __init__(
        self, pool: Pool, tuning: VectorTuning | None = None, read_pool: Pool | None = None
    ) -> None:
        self.pool = pool
        self.tuning = tuning or VectorTuning()
        self.read_pool = read_pool or pool
        self.reads_replica = self.read_pool is not pool

    # -- search (tenant transactions on the read pool) ----------------------------

    @contextlib.asynccontextmanager
    async def _reading(self, tenant: str, fresh: Freshness) -> AsyncIterator[Connection]:
        """A connection of the read pool for one tenant's search statements. Each leg
        and the page is one statement that sets the tenant itself (migration 0006),
        so no transaction is needed: one round trip instead of four. On replicas a
        read that must see `fresh.min_sequence` runs in a transaction that checks its
        own server first: a read DSN may balance over several replicas, and the one
        the process-wide wait read may be ahead of the one this connection landed on.
        (The primary never goes back, so there the process-wide wait suffices.)"""
        if fresh.min_sequence and self.reads_replica:
            async with tenant_transaction(self.read_pool, tenant) as conn:
                await _replayed(conn, fresh)
                yield conn
        else:
            async with self.read_pool.acquire() as conn:
                yield conn

    async def keyword_leg(
        self,
        tenant: str,
        query: str,
        limit: int,
        filters: Filters,
        fresh: Freshness = ANY_FRESHNESS,
    ) -> list[LegHit[int]]:
        """The full-text leg, best first, at most `limit` (a statement of its own, so
        it can run beside the query's embedding and the vector leg)."""
        async with self._reading(tenant, fresh) as conn:
            rows = await conn.fetch(Q["keyword_leg"], tenant, query, limit, *filters.params())
        return [LegHit(r["id"], float(r["score"])) for r in rows]

    async def vector_leg(
        self,
        tenant: str,
        vector: Sequence[float] | Awaitable[Sequence[float] | None],
        limit: int,
        filters: Filters,
        fresh: Freshness = ANY_FRESHNESS,
    ) -> list[LegHit[int]] | None:
        """The vector leg, best first, at most `limit`. `vector` may still be on its
        way (the query being embedded): the connection is taken (and on a replica
        the freshness checked) meanwhile, and None is returned if it comes back None
        (no vector: the caller degrades)."""
        async with self._reading(tenant, fresh) as conn:
            query_vector = await vector if inspect.isawaitable(vector) else vector
            if query_vector is None:
                return None
            return await self._vector_candidates(conn, tenant, query_vector, limit, filters)

    async def _vector_candidates(
        self,
        conn: Connection,
        tenant: str,
        vector: Sequence[float],
        limit: int,
        filters: Filters,
    ) -> list[LegHit[int]]:
        query_vector = as_vector(vector)
        tuning = self.tuning
        params = filters.params()
        ef_search, max_scan = str(max(tuning.ef_search, limit)), str(tuning.max_scan_tuples)
        rows = await conn.fetch(
            Q["vector_leg"], tenant, query_vector, limit, ef_search, max_scan, *params
        )
        if len(rows) < limit and tuning.exact_fallback:
            # Short: either every qualifying chunk was found (a small tenant or a
            # narrow filter: done) or the index scan gave up early (scan budget),
            # and only then an exact scan of the qualifying rows is worth its cost.
            async with conn.transaction():
                await conn.execute(Q["set_tenant"], tenant)
                qualifying = await conn.fetchval(
                    Q["vector_qualifying"], query_vector, limit, *params
                )
                if qualifying > len(rows):
                    rows = await conn.fetch(Q["vector_exact"], query_vector, limit, *params)
        return [LegHit(r["id"], float(r["score"])) for r in rows]

    async def page_rows(
        self, tenant: str, ids: Sequence[int], query: str, fresh: Freshness = ANY_FRESHNESS
    ) -> dict[int, Any]:
        async with self._reading(tenant, fresh) as conn:
            rows = await conn.fetch(Q["page_rows"], tenant, list(ids), query, HEADLINE_OPTIONS)
        return {row["id"]: row for row in rows}

    async def tenant_status(self, tenant: str, chunker_version: int) -> asyncpg.Record:
        async with tenant_transaction(self.pool, tenant) as conn:
            row = await conn.fetchrow(Q["tenant_status"], chunker_version)
        assert row is not None
        return row

    async def reindex_tenant(self, tenant: str, chunker_version: int) -> tuple[int, int]:
        """Queues the tenant's rebuild: (documents to re-chunk, chunks to re-embed)."""
        async with tenant_transaction(self.pool, tenant) as conn:
            documents: int = await conn.fetchval(Q["request_rebuild"], chunker_version)
            chunks: int = await conn.fetchval(Q["reindex_tenant"], chunker_version)
        return documents, chunks

    async def applied_sequence(self) -> int:
        """How far the index the searches read (the read pool's) has applied the feed."""
        sequence: int = await self.read_pool.fetchval(Q["applied_sequence"])
        return sequence

    async def checkpoint(self) -> Checkpoint:
        """The indexer's checkpoint, on the primary."""
        row = await self.pool.fetchrow(Q["read_checkpoint"])
        assert row is not None
        return Checkpoint(row["applied_sequence"], row["head_sequence"], row["last_applied_time"])

    # -- indexer (as INDEXER_ROLE) -------------------------------------------------

    @contextlib.asynccontextmanager
    async def indexer_transaction(self) -> AsyncIterator[Connection]:
        """A cross-tenant transaction as the indexer role (its own RLS policy)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL ROLE {INDEXER_ROLE}")
            yield conn

    @staticmethod
    async def lock_checkpoint(conn: Connection) -> int:
        sequence: int = await conn.fetchval(Q["lock_checkpoint"])
        return sequence

    @staticmethod
    async def advance_checkpoint(conn: Connection, sequence: int) -> None:
        await conn.execute(Q["advance_checkpoint"], sequence)

    @staticmethod
    async def replace_chunks(
        conn: Connection,
        tenant: str,
        document_name: str,
        chunks: Sequence[NewChunk],
        title: str,
        labels: Mapping[str, str],
        update_time: datetime,
        sequence: int,
        chunker_version: int,
        model_id: str | None = None,
    ) -> None:
        """Writes a document's chunks (and drops any beyond them); chunks that come
        with an embedding store it as made by `model_id`."""
        if chunks:
            await conn.execute(
                Q["upsert_chunks"],
                tenant,
                document_name,
                [c.ordinal for c in chunks],
                [c.text for c in chunks],
                [c.content_hash for c in chunks],
                title,
                dict(labels),
                update_time,
                sequence,
                chunker_version,
                [None if c.embedding is None else as_vector(c.embedding) for c in chunks],
                model_id,
            )
        await conn.execute(Q["delete_chunks_from"], tenant, document_name, len(chunks))

    @staticmethod
    async def delete_document(conn: Connection, tenant: str, document_name: str) -> None:
        await conn.execute(Q["delete_chunks_from"], tenant, document_name, 0)

    async def record_head(self, sequence: int) -> None:
        await self.pool.execute(Q["record_head"], sequence)

    async def rebuild_candidates(self, chunker_version: int, limit: int) -> list[Outdated]:
        """Outdated documents of the first tenant waiting for a rebuild; finished
        requests are dropped first."""
        async with self.indexer_transaction() as conn:
            await conn.execute(Q["finish_rebuilds"])
            rows = await conn.fetch(Q["rebuild_candidates"], chunker_version, limit)
        return [Outdated(r["tenant_id"], r["document_name"], r["applied_sequence"]) for r in rows]

    @staticmethod
    async def document_state(
        conn: Connection, tenant: str, document_name: str
    ) -> tuple[int | None, int | None]:
        """(newest sequence, oldest chunker version) of a document's chunks."""
        row = await conn.fetchrow(Q["document_state"], tenant, document_name)
        assert row is not None
        return row["applied_sequence"], row["chunker_version"]

    async def due_chunks(self, limit: int) -> list[DueChunk]:
        async with self.indexer_transaction() as conn:
            rows = await conn.fetch(Q["due_chunks"], limit)
        return [DueChunk(r["id"], r["title"], r["text"], r["content_hash"]) for r in rows]

    async def store_embeddings(
        self, chunks: Sequence[DueChunk], vectors: Sequence[Sequence[float]], model_id: str
    ) -> None:
        async with self.indexer_transaction() as conn:
            await conn.execute(
                Q["store_embeddings"],
                [c.id for c in chunks],
                [c.content_hash for c in chunks],
                [as_vector(v) for v in vectors],
                model_id,
            )

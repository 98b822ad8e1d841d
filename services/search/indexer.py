"""The indexer: the documents change feed → the search read model.

Two loops, both background work of the search service:

- `run_feed` streams `DocumentService.WatchChanges(all_tenants, after_sequence
  = checkpoint)` and applies each change in ONE transaction with the
  checkpoint (locked first, advanced last): a crash before commit leaves both
  untouched and the change is streamed again; a change at or below the
  checkpoint is skipped, so nothing is skipped or applied twice. Chunks land
  with NULL embeddings (keyword-searchable at once), unless their text is
  unchanged and keeps its vector. Heartbeats record the feed's head (for lag).
  A lost stream reconnects with exponential backoff and full jitter.
- `run_embeddings` fills in vectors of chunks not yet (or no longer) fresh, in
  batches, outside any transaction; a failed batch stays NULL and is retried
  after a backoff (the embedder's breaker keeps it from hammering a provider).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC

from protomesh.document.v1 import document_service_pb2 as doc_pb
from services.platform.logs import get_logger
from services.search import metrics
from services.search.chunking import ChunkingOptions, chunk_text, content_hash
from services.search.embedders import Embedder, EmbeddingError
from services.search.store import DueChunk, NewChunk, SearchStore

log = get_logger("protomesh.search.indexer")

# after_sequence → the change feed from there (a gRPC stream in the service).
FeedOpener = Callable[[int], AsyncIterator[doc_pb.WatchChangesResponse]]


@dataclass(frozen=True)
class IndexerOptions:
    chunking: ChunkingOptions = field(default_factory=ChunkingOptions)
    embed_batch_size: int = 32
    embed_idle_seconds: float = 2.0  # re-check for due chunks this often when idle
    embed_retry_seconds: float = 5.0  # after a failed batch
    reconnect_base_seconds: float = 0.2
    reconnect_cap_seconds: float = 10.0


def embedding_input(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


def chunks_of(title: str, content: str, options: ChunkingOptions) -> list[NewChunk]:
    return [
        NewChunk(c.ordinal, c.text, content_hash(embedding_input(title, c.text)))
        for c in chunk_text(content, options)
    ]


class Indexer:
    def __init__(
        self,
        store: SearchStore,
        embedder: Embedder,
        open_feed: FeedOpener,
        options: IndexerOptions | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.open_feed = open_feed
        self.options = options or IndexerOptions()
        self.embeddings_due = asyncio.Event()
        self.connected = asyncio.Event()
        self.applied_sequence = 0  # for the lag gauge; the checkpoint is the truth
        self.head_sequence = 0
        self._rng = random.Random()

    # -- the change feed -------------------------------------------------------

    async def run_feed(self) -> None:
        """Follows the feed until cancelled, reconnecting after any failure."""
        failures = 0
        while True:
            try:
                checkpoint = await self.store.checkpoint()
                self.applied_sequence = checkpoint.applied_sequence
                async for message in self.open_feed(checkpoint.applied_sequence):
                    self.connected.set()
                    failures = 0
                    await self.handle(message)
                raise ConnectionError("change feed ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                delay = self._rng.uniform(
                    0,
                    min(
                        self.options.reconnect_cap_seconds,
                        self.options.reconnect_base_seconds * 2**failures,
                    ),
                )
                failures = min(failures + 1, 16)
                log.warning("change feed lost; reconnecting", error=repr(exc), delay=delay)
                await asyncio.sleep(delay)

    async def handle(self, message: doc_pb.WatchChangesResponse) -> None:
        if message.HasField("heartbeat"):
            head = message.heartbeat.head_sequence
            await self.store.record_head(head)
            self.head_sequence = head
        elif message.HasField("change"):
            if await self.apply(message.change):
                self.embeddings_due.set()
            self.applied_sequence = max(self.applied_sequence, message.change.sequence)
            self.head_sequence = max(self.head_sequence, message.change.sequence)
        metrics.INDEXER_LAG.set(max(0, self.head_sequence - self.applied_sequence))

    async def apply(self, change: doc_pb.DocumentChange) -> bool:
        """Applies one change with the checkpoint; False if it was already applied."""
        tenant = change.tenant_id
        if not tenant:
            raise ValueError(f"change {change.sequence} carries no tenant (all_tenants feed?)")
        chunks: list[NewChunk] = []
        if change.type != doc_pb.CHANGE_TYPE_DELETED:
            document = change.document
            chunks = chunks_of(document.title, document.content, self.options.chunking)
        async with self.store.indexer_transaction() as conn:
            applied = await self.store.lock_checkpoint(conn)
            if change.sequence <= applied:
                return False
            if change.type == doc_pb.CHANGE_TYPE_DELETED:
                await self.store.delete_document(conn, tenant, change.document_name)
            else:
                document = change.document
                await self.store.replace_chunks(
                    conn,
                    tenant,
                    change.document_name,
                    chunks,
                    document.title,
                    dict(document.labels),
                    document.update_time.ToDatetime(tzinfo=UTC),
                    change.sequence,
                )
            await self.before_commit(change)
            await self.store.advance_checkpoint(conn, change.sequence)
        return True

    async def before_commit(self, change: doc_pb.DocumentChange) -> None:
        """Hook between the chunk writes and the checkpoint (tests inject crashes)."""

    # -- the embedding pass ------------------------------------------------------

    async def run_embeddings(self) -> None:
        """Fills in due embeddings until cancelled."""
        while True:
            self.embeddings_due.clear()
            done = await self.embed_once()
            if done == self.options.embed_batch_size:
                continue  # more may be due: keep going
            if done < 0:
                await asyncio.sleep(self.options.embed_retry_seconds)
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(self.embeddings_due.wait(), self.options.embed_idle_seconds)

    async def embed_once(self) -> int:
        """One batch: how many chunks got vectors, or -1 when embedding failed."""
        due: list[DueChunk] = await self.store.due_chunks(self.options.embed_batch_size)
        if not due:
            return 0
        try:
            vectors = await self.embedder.embed([embedding_input(c.title, c.text) for c in due])
        except EmbeddingError as exc:
            log.warning("embedding failed; chunks stay keyword-only for now", error=str(exc))
            return -1
        await self.store.store_embeddings(due, vectors, self.embedder.model_id)
        metrics.CHUNKS_EMBEDDED.labels(self.embedder.model_id).inc(len(due))
        return len(due)

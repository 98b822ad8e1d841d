"""The indexer: the documents change feed → the search read model.

Two loops, both background work of the search service:

- `run_feed` streams `DocumentService.WatchChanges(all_tenants, after_sequence
  = checkpoint)` and applies the changes that have arrived (one, or up to
  `apply_batch_size` when the feed is ahead) in ONE transaction with the
  checkpoint (locked first, advanced last): a crash before commit leaves both
  untouched and the changes are streamed again; a change at or below the
  checkpoint is skipped, so nothing is skipped or applied twice. Chunks land
  with NULL embeddings (keyword-searchable at once), unless their text is
  unchanged and keeps its vector. Heartbeats record the feed's head (for lag).
  A lost stream reconnects with exponential backoff and full jitter.
- `run_embeddings` fills in vectors of chunks not yet (or no longer) fresh, in
  batches, outside any transaction; a failed batch stays NULL and is retried
  after a backoff (the embedder's breaker keeps it from hammering a provider).
- `run_rebuilds` re-chunks the documents of tenants that asked for it
  (`ReindexTenant`) whose chunks an older chunker made: it fetches them from
  the documents service, chunks and embeds them outside any transaction, then
  swaps each document's chunks in one transaction with the checkpoint locked,
  unless the feed rewrote the document meanwhile. Searches see the old chunks
  (with their vectors) until the swap and the new ones (with theirs) after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, TypeVar

from protomesh.document.v1 import document_service_pb2 as doc_pb
from services.platform.logs import get_logger
from services.platform.resilience import backoff_delay
from services.search import metrics
from services.search.chunking import (
    CHUNKER_VERSION,
    ChunkingOptions,
    TokenCounter,
    chunk_text,
    content_hash,
)
from services.search.embedders import Embedder, EmbeddingError, token_counter
from services.search.store import DueChunk, NewChunk, Outdated, SearchStore

log = get_logger("protomesh.search.indexer")
T = TypeVar("T")

# after_sequence → the change feed from there (a gRPC stream in the service).
FeedOpener = Callable[[int], AsyncIterator[doc_pb.WatchChangesResponse]]
# (tenant, document names) → those documents that still exist, read as the tenant.
DocumentFetcher = Callable[[str, Sequence[str]], Awaitable[list[doc_pb.Document]]]
_END = object()


async def arrived(feed: AsyncIterator[T], most: int) -> AsyncIterator[list[T]]:
    """The items of `feed` in lists: each list holds the next item and whatever else
    had already arrived behind it (at most `most`), so a consumer that keeps up gets
    one item at a time and one that is behind gets them in bulk. The feed is read
    ahead by a task of its own, at most `2 * most` items; its failure is raised here
    after the items before it."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * most)

    async def read() -> None:
        try:
            async for item in feed:
                await queue.put(item)
            await queue.put(_END)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, raised there
            await queue.put(exc)

    reader = asyncio.create_task(read())
    try:
        while True:
            batch: list[T] = []
            item = await queue.get()
            while True:
                if item is _END:
                    if batch:
                        yield batch
                    return
                if isinstance(item, BaseException):
                    if batch:
                        yield batch
                    raise item
                batch.append(item)
                if len(batch) >= most or queue.empty():
                    break
                item = queue.get_nowait()
            yield batch
    finally:
        reader.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await reader


@dataclass(frozen=True)
class IndexerOptions:
    chunking: ChunkingOptions = field(default_factory=ChunkingOptions)
    embed_batch_size: int = 32
    apply_batch_size: int = 64  # changes applied per transaction when the feed is ahead
    embed_idle_seconds: float = 2.0  # re-check for due chunks this often when idle
    embed_retry_seconds: float = 5.0  # after a failed batch
    reconnect_base_seconds: float = 0.2
    reconnect_cap_seconds: float = 10.0
    rebuild_batch_size: int = 16  # documents fetched, chunked and swapped together
    rebuild_idle_seconds: float = 5.0  # re-check for requested rebuilds this often


def embedding_input(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


def chunks_of(
    title: str, content: str, counter: TokenCounter, options: ChunkingOptions
) -> list[NewChunk]:
    return [
        NewChunk(c.ordinal, c.text, content_hash(embedding_input(title, c.text)))
        for c in chunk_text(content, counter, options, title)
    ]


class Indexer:
    def __init__(
        self,
        store: SearchStore,
        embedder: Embedder,
        open_feed: FeedOpener,
        options: IndexerOptions | None = None,
        fetch_documents: DocumentFetcher | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.counter = token_counter(embedder)
        self.open_feed = open_feed
        self.fetch_documents = fetch_documents
        self.options = options or IndexerOptions()
        self.embeddings_due = asyncio.Event()
        self.rebuilds_due = asyncio.Event()
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
                feed = self.open_feed(checkpoint.applied_sequence)
                async for messages in arrived(feed, self.options.apply_batch_size):
                    self.connected.set()
                    failures = 0
                    await self.handle_all(messages)
                raise ConnectionError("change feed ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                delay = backoff_delay(
                    failures,
                    self.options.reconnect_base_seconds,
                    self.options.reconnect_cap_seconds,
                    self._rng,
                )
                failures = min(failures + 1, 16)
                log.warning("change feed lost; reconnecting", error=repr(exc), delay=delay)
                await asyncio.sleep(delay)

    async def handle(self, message: doc_pb.WatchChangesResponse) -> None:
        await self.handle_all([message])

    async def handle_all(self, messages: Sequence[doc_pb.WatchChangesResponse]) -> None:
        """Applies the changes among `messages` in one transaction and records the
        newest head any heartbeat among them reported."""
        changes = [m.change for m in messages if m.HasField("change")]
        heads = [m.heartbeat.head_sequence for m in messages if m.HasField("heartbeat")]
        if changes:
            if await self.apply_all(changes):
                self.embeddings_due.set()
            newest = max(c.sequence for c in changes)
            self.applied_sequence = max(self.applied_sequence, newest)
            self.head_sequence = max(self.head_sequence, newest)
        if heads:
            await self.store.record_head(max(heads))
            self.head_sequence = max(heads)
        metrics.INDEXER_LAG.set(max(0, self.head_sequence - self.applied_sequence))

    async def apply(self, change: doc_pb.DocumentChange) -> bool:
        """Applies one change with the checkpoint; False if it was already applied."""
        return await self.apply_all([change]) > 0

    async def apply_all(self, changes: Sequence[doc_pb.DocumentChange]) -> int:
        """Applies `changes` (in feed order) and advances the checkpoint past them, in
        one transaction; returns how many were new (the rest were applied before)."""
        planned: list[tuple[doc_pb.DocumentChange, list[NewChunk]]] = []
        for change in changes:
            if not change.tenant_id:
                raise ValueError(f"change {change.sequence} carries no tenant (all_tenants feed?)")
            chunks: list[NewChunk] = []
            if change.type != doc_pb.CHANGE_TYPE_DELETED:
                document = change.document
                chunks = chunks_of(
                    document.title, document.content, self.counter, self.options.chunking
                )
            planned.append((change, chunks))
        applied_now = 0
        async with self.store.indexer_transaction() as conn:
            checkpoint = await self.store.lock_checkpoint(conn)
            for change, chunks in planned:
                if change.sequence <= checkpoint:
                    continue
                if change.type == doc_pb.CHANGE_TYPE_DELETED:
                    await self.store.delete_document(conn, change.tenant_id, change.document_name)
                else:
                    document = change.document
                    await self.store.replace_chunks(
                        conn,
                        change.tenant_id,
                        change.document_name,
                        chunks,
                        document.title,
                        dict(document.labels),
                        document.update_time.ToDatetime(tzinfo=UTC),
                        change.sequence,
                        CHUNKER_VERSION,
                    )
                await self.before_commit(change)
                checkpoint = change.sequence
                applied_now += 1
            if applied_now:
                await self.store.advance_checkpoint(conn, checkpoint)
        return applied_now

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

    # -- the rebuild pass ---------------------------------------------------------

    async def run_rebuilds(self) -> None:
        """Rebuilds requested tenants' outdated documents until cancelled."""
        while True:
            self.rebuilds_due.clear()
            try:
                done = await self.rebuild_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the documents service or the embedder is away
                log.warning("rebuild batch failed; retrying later", error=repr(exc))
                done = -1
            if done > 0:
                continue
            delay = (
                self.options.embed_retry_seconds if done < 0 else self.options.rebuild_idle_seconds
            )
            with suppress(TimeoutError):
                await asyncio.wait_for(self.rebuilds_due.wait(), delay)

    async def rebuild_once(self) -> int:
        """One batch of one tenant: how many documents were rebuilt (0: nothing to
        do or nothing could be done now)."""
        if self.fetch_documents is None:
            return 0
        due = await self.store.rebuild_candidates(CHUNKER_VERSION, self.options.rebuild_batch_size)
        if not due:
            return 0
        tenant = due[0].tenant_id
        documents = await self.fetch_documents(tenant, [d.document_name for d in due])
        planned = [
            (
                document,
                chunks_of(document.title, document.content, self.counter, self.options.chunking),
            )
            for document in documents
        ]
        inputs = [embedding_input(d.title, c.text) for d, chunks in planned for c in chunks]
        vectors = iter(await self.embedder.embed(inputs))
        seen = {d.document_name: d for d in due}
        rebuilt = 0
        async with self.store.indexer_transaction() as conn:
            await self.store.lock_checkpoint(conn)  # no feed change lands meanwhile
            for document, chunks in planned:
                embedded = [dataclasses.replace(c, embedding=next(vectors)) for c in chunks]
                if not await self._still_outdated(conn, seen[document.name]):
                    continue
                await self.store.replace_chunks(
                    conn,
                    tenant,
                    document.name,
                    embedded,
                    document.title,
                    dict(document.labels),
                    document.update_time.ToDatetime(tzinfo=UTC),
                    max(document.sequence, seen[document.name].applied_sequence),
                    CHUNKER_VERSION,
                    self.embedder.model_id,
                )
                rebuilt += 1
        metrics.DOCUMENTS_REBUILT.inc(rebuilt)
        return rebuilt

    async def _still_outdated(self, conn: Any, seen: Outdated) -> bool:
        """False when the feed rewrote or deleted the document since it was picked."""
        sequence, version = await self.store.document_state(
            conn, seen.tenant_id, seen.document_name
        )
        return (
            sequence == seen.applied_sequence and version is not None and version < CHUNKER_VERSION
        )

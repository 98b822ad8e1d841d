"""Freshness and ingest: how soon a written document is searchable, and how fast the
indexer keeps up with a bulk load, through a whole protomesh (`protomesh up` as
processes: DocumentService → WatchChanges → the search indexer with the default
MiniLM embedder → SearchService; embedded PostgreSQL).

Documents are 1 KB of English: sentences of standard-library docstrings (the
set `bench/search_quality.py` builds) drawn with a fixed seed, so every document
is distinct text that chunks and embeds like prose.

Measured, sequentially and at idle (one document at a time, the previous one
fully embedded first):
- write → keyword-searchable, with read-your-writes: CreateDocument, then one
  KEYWORD Search for a word only that document holds, with `min_sequence` = the
  write's sequence; stops when the answer holds the document;
- the same by polling: KEYWORD Search without `min_sequence` every 10 ms;
- write → embedded: GetIndexStatus every 10 ms until the tenant's documents
  include it and none of its chunks waits for an embedding (then a VECTOR Search
  filtered to the document checks that it is vector-searchable).
Then bulk ingests, in `--rounds` rounds; each round runs the default embedder
alone, in this process, on the round's chunk texts (the indexer's embedding
inputs, in its order, same batch size: the raw baseline) and sends the round's
documents over `--streams` parallel BatchCreateDocuments streams into a tenant
of its own, polling GetIndexStatus (the baseline first in the 1st, 3rd, …
round, the ingest first in the others). Alternating keeps baseline and
pipeline in the same stretch of a shared machine's noise. Summed over the
rounds:
- keyword-searchable throughput: documents / time from the first write until
  the indexer's checkpoint covers the last write's sequence;
- vector-complete throughput: chunks / time from the first write until every
  chunk has an embedding, and its ratio to the raw embedder's chunks/s;
- the embedder's busy share: seconds the search process spent inside its
  embedder (its /metrics) / vector-complete seconds — the pipeline's own
  overhead, which the machine's noise does not move much.

Prints JSON with the goals (issue 5): searchable p95 ≤ 1 s; keyword ingest ≥ 200
documents/s; vector-complete ingest ≥ 90 % of the raw embedder. Nothing asserts.

    .venv/bin/python -m bench.ingest [--quick] [--documents 600] [--rounds 6]
                                     [--streams 4] [--fresh 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import string
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import RunningSystem, latency_summary, running_system
from bench.goals import at_least, at_most, phase, print_goals
from bench.search_quality import examples
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from services.platform.minilm import MiniLmOnnxEmbedder
from services.search.chunking import split_sentences
from services.search.indexer import IndexerOptions, chunks_of, embedding_input

DOCUMENT_BYTES = 1024
POLL_SECONDS = 0.010
VECTOR_PROBE = "what does this function return"
Metadata = tuple[tuple[str, str], ...]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- documents ------------------------------------------------------------------------


class Writer:
    """Distinct ~1 KB English documents: docstring sentences drawn with a fixed seed."""

    def __init__(self, seed: int = 5) -> None:
        self.rng = random.Random(seed)
        found = list(examples(min_body=0))
        self.titles = [e.title for e in found]
        self.sentences = [
            " ".join(words)
            for e in found
            for words in split_sentences(e.body)
            if 4 <= len(words) <= 60
        ]

    def marker(self) -> str:
        """A word no other document holds (letters only: one lexeme for the parser)."""
        return "zq" + "".join(self.rng.choices(string.ascii_lowercase, k=10))

    def document(self, lead: str = "") -> doc_pb.Document:
        parts, size = [lead] if lead else [], len(lead)
        while size < DOCUMENT_BYTES:
            sentence = self.rng.choice(self.sentences)
            parts.append(sentence)
            size += len(sentence) + 1
        content = " ".join(parts).encode()[:DOCUMENT_BYTES].decode(errors="ignore")
        content = content.rsplit(" ", 1)[0]  # no cut word at the end
        return doc_pb.Document(title=self.rng.choice(self.titles), content=content)


# -- the system ----------------------------------------------------------------------------


@dataclass
class Client:
    documents: doc_grpc.DocumentServiceStub
    search: pb_grpc.SearchServiceStub
    auth: Metadata

    async def status(self) -> pb.IndexStatus:
        status: pb.IndexStatus = await self.search.GetIndexStatus(
            pb.GetIndexStatusRequest(), metadata=self.auth
        )
        return status

    async def keyword_hit(self, word: str, name: str, min_sequence: int = 0) -> bool:
        response = await self.search.Search(
            pb.SearchRequest(query=word, mode=pb.SEARCH_MODE_KEYWORD, min_sequence=min_sequence),
            metadata=self.auth,
            timeout=30,
        )
        return any(r.document_name == name for r in response.results)

    async def vector_hit(self, name: str) -> bool:
        request = pb.SearchRequest(query=VECTOR_PROBE, mode=pb.SEARCH_MODE_VECTOR)
        request.filter.document_names.append(name)
        response = await self.search.Search(request, metadata=self.auth)
        return not response.degraded and any(r.document_name == name for r in response.results)

    async def wait_embedded(self, documents: int, limit_seconds: float = 60.0) -> None:
        """Until the tenant has `documents` indexed and no chunk waits for a vector."""
        end = time.monotonic() + limit_seconds
        while time.monotonic() < end:
            status = await self.status()
            if status.document_count >= documents and status.pending_embedding_count == 0:
                return
            await asyncio.sleep(POLL_SECONDS)
        raise TimeoutError(f"document {documents} not embedded within {limit_seconds:g}s")


def client(system: RunningSystem, tenant: str, channels: list[grpc.aio.Channel]) -> Client:
    settings = system.settings
    document_channel = grpc.aio.insecure_channel(settings.address_of("document"))
    search_channel = grpc.aio.insecure_channel(settings.address_of("search"))
    channels += [document_channel, search_channel]
    return Client(
        doc_grpc.DocumentServiceStub(document_channel),
        pb_grpc.SearchServiceStub(search_channel),
        (("authorization", f"Bearer {system.token(tenant)}"),),
    )


# -- freshness -----------------------------------------------------------------------------


@dataclass
class Freshness:
    created: list[float]
    searchable: list[float]
    embedded: list[float]
    vector_searchable: int = 0
    misses: int = 0  # min_sequence answers without the document


async def freshness(
    fresh: Client, writer: Writer, count: int, warmup: int, read_your_writes: bool
) -> Freshness:
    """`count` sequential writes, each followed by its searchable and embedded times."""
    out = Freshness([], [], [])
    status = await fresh.status()
    indexed = status.document_count
    for i in range(warmup + count):
        word = writer.marker()
        document = writer.document(lead=word)
        started = time.perf_counter()
        created = await fresh.documents.CreateDocument(
            doc_pb.CreateDocumentRequest(document=document), metadata=fresh.auth
        )
        acknowledged = time.perf_counter()
        if read_your_writes:
            found = await fresh.keyword_hit(word, created.name, created.sequence)
            out.misses += not found  # the index had applied the write: expect 0
        else:
            found = await fresh.keyword_hit(word, created.name)
        while not found:
            await asyncio.sleep(POLL_SECONDS)
            found = await fresh.keyword_hit(word, created.name)
        searchable = time.perf_counter()
        indexed += 1
        await fresh.wait_embedded(indexed)
        embedded = time.perf_counter()
        if i < warmup:
            continue
        out.created.append(acknowledged - started)
        out.searchable.append(searchable - started)
        out.embedded.append(embedded - started)
        out.vector_searchable += await fresh.vector_hit(created.name)
        await asyncio.sleep(0.05)  # idle between writes
    return out


# -- bulk ingest ---------------------------------------------------------------------------


@dataclass
class Ingest:
    documents: int
    chunks: int
    written_seconds: float
    keyword_seconds: float
    vector_seconds: float
    indexed_chunks: int


async def ingest(
    bulk: Client, documents: Sequence[doc_pb.Document], chunks: int, streams: int
) -> Ingest:
    """`streams` parallel BatchCreateDocuments streams; GetIndexStatus polled until the
    checkpoint covers the last write (keyword) and every chunk has a vector (vector)."""

    async def items(first: int) -> AsyncIterator[doc_pb.BatchCreateDocumentsRequest]:
        for i in range(first, len(documents), streams):
            yield doc_pb.BatchCreateDocumentsRequest(document=documents[i], request_id=f"b-{i}")

    async def write() -> list[doc_pb.BatchCreateDocumentsResponse]:
        return list(
            await asyncio.gather(
                *(
                    bulk.documents.BatchCreateDocuments(items(s), metadata=bulk.auth, timeout=120)
                    for s in range(streams)
                )
            )
        )

    started = time.perf_counter()
    stream = asyncio.ensure_future(write())
    last_sequence, written, keyword = 0, 0.0, 0.0
    while True:
        if not last_sequence and stream.done():
            replies = stream.result()
            created = sum(r.created_count for r in replies)
            if created != len(documents):
                raise RuntimeError(f"created {created} of {len(documents)} documents")
            last_sequence = max(r.sequence for reply in replies for r in reply.results)
            written = time.perf_counter() - started
        status = await bulk.status()
        now = time.perf_counter() - started
        if last_sequence and not keyword and status.applied_sequence >= last_sequence:
            keyword = now
        if (
            keyword
            and status.document_count == len(documents)
            and status.pending_embedding_count == 0
        ):
            return Ingest(len(documents), chunks, written, keyword, now, status.chunk_count)
        if now > 600:
            raise TimeoutError(f"ingest not complete after {now:.0f}s: {status}")
        # Fine-grained while the checkpoint is the question, coarse while embedding
        # (the polls run on the same two cores as the embedder).
        await asyncio.sleep(0.02 if not keyword else 0.1)


async def embedder_seconds(system: RunningSystem) -> float:
    """Seconds the search process has spent inside its embedder (its /metrics)."""
    port = system.settings.metrics_port_of("search")
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "protomesh_embedding_batch_duration_seconds_sum"
    )


async def raw_embedder(embedder: MiniLmOnnxEmbedder, texts: Sequence[str]) -> float:
    """Seconds for the default embedder alone on `texts`, batch by batch like the indexer."""
    size = IndexerOptions().embed_batch_size
    started = time.perf_counter()
    for start in range(0, len(texts), size):
        await embedder.embed(texts[start : start + size])
    return time.perf_counter() - started


# -- the run -------------------------------------------------------------------------------


@dataclass
class Round:
    ingest: Ingest
    raw_seconds: float
    busy_seconds: float


async def rounds(
    system: RunningSystem,
    writer: Writer,
    args: argparse.Namespace,
    channels: list[Any],
) -> tuple[list[Round], str]:
    """Rounds of: the raw embedder on a round's chunk texts, and the ingest of the
    round's documents (into a tenant of its own) until vector-complete. Alternating
    keeps the baseline and the pipeline in the same stretch of a shared machine's noise."""
    embedder = MiniLmOnnxEmbedder()
    chunking = IndexerOptions().chunking
    out = []
    count, documents = args.rounds, args.documents // args.rounds
    for r in range(count):
        batch = [writer.document() for _ in range(documents)]
        texts = [
            embedding_input(d.title, c.text)
            for d in batch
            for c in chunks_of(d.title, d.content, embedder.token_counter, chunking)
        ]
        if r == 0:
            await embedder.embed(texts[:32])  # warm-up
        raw_first = r % 2 == 0  # alternate, so drift favours neither side
        log(f"round {r + 1}/{count}: {len(texts)} chunks, raw embedder first: {raw_first}")
        if raw_first:
            raw = await raw_embedder(embedder, texts)
        busy = await embedder_seconds(system)
        bulk = client(system, f"bulk-{r}", channels)
        outcome = await ingest(bulk, batch, len(texts), args.streams)
        busy = await embedder_seconds(system) - busy
        if not raw_first:
            raw = await raw_embedder(embedder, texts)
        out.append(Round(outcome, raw, busy))
    return out, embedder.model_id


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


async def run(system: RunningSystem, args: argparse.Namespace) -> dict[str, Any]:
    writer = Writer(args.seed)
    channels: list[grpc.aio.Channel] = []
    try:
        fresh = client(system, "fresh", channels)
        log(f"freshness: {args.fresh} documents with min_sequence, {args.fresh} by polling")
        phase(f"write → searchable, {args.fresh} documents with read-your-writes")
        ryw = await freshness(fresh, writer, args.fresh, warmup=3, read_your_writes=True)
        phase(f"write → searchable, {args.fresh} documents polled")
        polled = await freshness(fresh, writer, args.fresh, warmup=0, read_your_writes=False)
        phase(f"bulk ingest in {args.rounds} rounds beside the raw embedder")
        done, model_id = await rounds(system, writer, args, channels)
    finally:
        for channel in channels:
            await channel.close()

    documents = sum(r.ingest.documents for r in done)
    chunks = sum(r.ingest.chunks for r in done)
    raw_seconds = sum(r.raw_seconds for r in done)
    vector_seconds = sum(r.ingest.vector_seconds for r in done)
    busy_seconds = sum(r.busy_seconds for r in done)
    keyword_per_s = rate(documents, sum(r.ingest.keyword_seconds for r in done))
    raw_per_s = rate(chunks, raw_seconds)
    pipeline_per_s = rate(chunks, vector_seconds)
    ratio = round(pipeline_per_s / raw_per_s, 3) if raw_per_s else 0.0
    by_round = [r.raw_seconds / r.ingest.vector_seconds for r in done]
    searchable = latency_summary(ryw.searchable)
    return {
        "benchmark": "ingest",
        "document_bytes": DOCUMENT_BYTES,
        "embedder": model_id,
        "embed_batch_size": IndexerOptions().embed_batch_size,
        "freshness": {
            "documents_per_method": args.fresh,
            "create": latency_summary(ryw.created + polled.created),
            "searchable_min_sequence": searchable,
            "min_sequence_misses": ryw.misses,
            "searchable_polling_10ms": latency_summary(polled.searchable),
            "embedded": latency_summary(ryw.embedded + polled.embedded),
            "vector_hits_once_embedded": ryw.vector_searchable + polled.vector_searchable,
        },
        "ingest": {
            "rounds": len(done),
            "streams": args.streams,
            "documents": documents,
            "chunks": chunks,
            "indexed_chunks": sum(r.ingest.indexed_chunks for r in done),
            "write_docs_per_s": rate(documents, sum(r.ingest.written_seconds for r in done)),
            "keyword_docs_per_s": keyword_per_s,
            "vector_docs_per_s": rate(documents, vector_seconds),
            "pipeline_chunks_per_s": pipeline_per_s,
            "raw_embedder_chunks_per_s": raw_per_s,
            "in_service_embedder_chunks_per_s": rate(chunks, busy_seconds),
            "by_round": [
                {
                    "written_seconds": round(r.ingest.written_seconds, 2),
                    "keyword_seconds": round(r.ingest.keyword_seconds, 2),
                    "vector_seconds": round(r.ingest.vector_seconds, 2),
                    "raw_seconds": round(r.raw_seconds, 2),
                    "embedder_busy_seconds": round(r.busy_seconds, 2),
                    "pipeline_over_raw": round(r.raw_seconds / r.ingest.vector_seconds, 3),
                }
                for r in done
            ],
        },
        "pipeline_over_raw_ratio": ratio,
        # Rounds differ with the machine's load; the median shrugs off a bad one.
        "pipeline_over_raw_median_ratio": round(statistics.median(by_round), 3),
        # The pipeline's own overhead without the machine's noise: the share of the
        # ingest's wall time the search process spent inside its embedder.
        "embedder_busy_ratio": round(busy_seconds / vector_seconds, 3),
        "goals": {
            "searchable_p95_ms": at_most(searchable["p95_ms"], 1000),
            "keyword_docs_per_s": at_least(keyword_per_s, 200),
            "pipeline_over_raw_ratio": at_least(ratio, 0.9),
        },
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="--documents 150 --rounds 2 --fresh 15"
    )
    parser.add_argument("--documents", type=int, default=600, help="bulk ingest, all rounds")
    parser.add_argument("--rounds", type=int, default=6, help="raw embedder / ingest rounds")
    parser.add_argument("--streams", type=int, default=4, help="parallel write streams")
    parser.add_argument("--fresh", type=int, default=50, help="sequential writes per method")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.documents, args.fresh = min(args.documents, 150), min(args.fresh, 15)
        args.rounds = min(args.rounds, 2)
    with running_system(workers=0) as system:
        result = asyncio.run(run(system, args))
    print_goals(result["goals"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Search benchmark, two modes. Both print JSON.

Default: 100k chunks, 10 tenants, 384-d; latency and throughput of `Search` over
gRPC vs the seed's reference hybrid and reference ANN queries, and recall@10 /
overlap@10 against exact answers. Writes JSON.

    .venv/bin/python bench/search.py [--chunks 100000] [--out bench-search.json]

`--end-to-end`: what a user of `protomesh up` sees. The whole system as processes
(bench.common.running_system: embedded PostgreSQL, the four services, task workers,
gateway) with the default embedder (MiniLM), a few thousand chunks of real text
(sections of Debian's python3.11-doc, bench/corpora.py, 450 documents ≈ 2.8k
chunks) ingested through DocumentService and indexed by the search service's own
indexer, then KEYWORD, VECTOR and HYBRID searches from a plain grpc.aio client,
interleaved, every query distinct (no query-vector cache hit), and between them the
model's own query embedding in this process (`embed_query`: with the service's
settings, and with onnxruntime's defaults, which are faster alone), so every figure
shares the machine's noise. Goal: hybrid p50 ≤ 10 ms + the model's p50 (the faster
of the two).

    .venv/bin/python bench/search.py --end-to-end [--documents 450] [--queries 30]

Data: text is realistic-shaped but synthetic (Zipf-distributed words over a
6,000-word vocabulary, 40-120 words a chunk); vectors are synthetic but
clustered (per-tenant topic centroids + Gaussian noise, unit length), so
loading takes seconds instead of the ~25 minutes MiniLM would need for 100k
chunks. The service runs with a lookup embedder that returns each benchmark
query's precomputed vector, so gRPC timings measure the search path, not the
model (MiniLM's own cost is reported separately as `embedder`).

Baselines, run with asyncpg as the app role under the tenant's RLS:
- reference hybrid: RRF of two CTEs without per-leg limits (to_tsvector per
  row, ROW_NUMBER over every match / every embedded row), FULL OUTER JOIN.
- reference ANN: ORDER BY embedding <=> $v LIMIT 10, default ef_search, no
  iterative scan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RunningSystem, latency_summary, running_system
from bench.goals import at_least, at_most, phase, print_goals
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from services.platform.config import Settings
from services.platform.db import APP_ROLE, create_pool, with_user
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.logs import configure_logging
from services.platform.migrations import migrate
from services.platform.server import ServiceServer
from services.search.ranking import LegHit, rrf, score_fusion
from services.search.service import make_spec
from services.search.servicer import DEFAULT_DEPTH
from services.search.store import Filters, Q, SearchStore

DIM = 384


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form, for COPY and the reference queries' ::text::vector."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


TENANTS = 10
TOPICS_PER_TENANT = 20

REFERENCE_HYBRID = """
WITH kw AS (
  SELECT id, ROW_NUMBER() OVER (ORDER BY ts_rank_cd(
           to_tsvector('english', title || ' ' || text), plainto_tsquery('english', $1)) DESC)
         AS bm25_rank
  FROM search.chunks
  WHERE to_tsvector('english', title || ' ' || text) @@ plainto_tsquery('english', $1)
), vec AS (
  SELECT id, ROW_NUMBER() OVER (ORDER BY embedding <=> $2::text::vector) AS vector_rank
  FROM search.chunks WHERE embedding IS NOT NULL
)
SELECT coalesce(kw.id, vec.id) AS id,
       coalesce(1.0 / (60 + kw.bm25_rank), 0) * 0.5
     + coalesce(1.0 / (60 + vec.vector_rank), 0) * 0.5 AS score
FROM kw FULL OUTER JOIN vec ON kw.id = vec.id
ORDER BY score DESC, id
LIMIT 10
"""
REFERENCE_ANN = """
SELECT id FROM search.chunks WHERE embedding IS NOT NULL
ORDER BY embedding <=> $1::text::vector LIMIT 10
"""


def vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    syllables = [
        "ka",
        "lo",
        "mi",
        "ren",
        "sto",
        "vu",
        "tar",
        "pel",
        "din",
        "qua",
        "zor",
        "bel",
        "nix",
        "ora",
        "sil",
        "tem",
        "gra",
        "fen",
        "hul",
        "wix",
    ]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Corpus:
    def __init__(self, chunks: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.words = vocabulary(rng)
        self.zipf = np.array([1.0 / (i + 1) for i in range(len(self.words))])
        self.zipf /= self.zipf.sum()
        self.rng = rng
        self.chunks = chunks
        self.centroids = self.np_rng.normal(size=(TENANTS * TOPICS_PER_TENANT, DIM)).astype(
            np.float32
        )
        # topic words: each topic favours its own 30 words
        self.topic_words = [
            [self.words[int(i)] for i in self.np_rng.choice(len(self.words), 30, replace=False)]
            for _ in range(TENANTS * TOPICS_PER_TENANT)
        ]

    def vector(self, topic: int, noise: float = 0.9) -> Any:
        v = self.centroids[topic] + self.np_rng.normal(scale=noise, size=DIM).astype(np.float32)
        return v / np.linalg.norm(v)

    def text(self, topic: int) -> str:
        n = self.rng.randint(40, 120)
        common = self.np_rng.choice(len(self.words), n, p=self.zipf)
        words = [self.words[int(i)] for i in common]
        for _ in range(n // 4):
            words[self.rng.randrange(n)] = self.rng.choice(self.topic_words[topic])
        sentences, out = [], []
        for i, w in enumerate(words):
            out.append(w)
            if i % 12 == 11:
                sentences.append(" ".join(out).capitalize() + ".")
                out = []
        if out:
            sentences.append(" ".join(out).capitalize() + ".")
        return " ".join(sentences)

    def rows(self) -> list[tuple[Any, ...]]:
        rows = []
        now = "2026-01-01T00:00:00+00:00"
        for i in range(self.chunks):
            tenant = i % TENANTS
            topic = tenant * TOPICS_PER_TENANT + self.rng.randrange(TOPICS_PER_TENANT)
            title = " ".join(self.rng.sample(self.topic_words[topic], 3)).title()
            rows.append(
                (
                    f"tenant-{tenant}",
                    f"documents/d{i}",
                    0,
                    title,
                    self.text(topic),
                    json.dumps({"tenant": str(tenant), "topic": str(topic % 4)}),
                    now,
                    vector_literal(self.vector(topic).tolist()),
                    "synthetic",
                    True,
                    f"h{i}",
                    1,
                )
            )
        return rows

    def queries(self, count: int) -> list[tuple[str, str, list[float]]]:
        """(tenant, text, vector): two or three topic words and a nearby vector."""
        out = []
        for _ in range(count):
            tenant = self.rng.randrange(TENANTS)
            topic = tenant * TOPICS_PER_TENANT + self.rng.randrange(TOPICS_PER_TENANT)
            text = " ".join(self.rng.sample(self.topic_words[topic], self.rng.randint(2, 3)))
            out.append((f"tenant-{tenant}", text, self.vector(topic, noise=1.1).tolist()))
        return out


class LookupEmbedder:
    """Returns each benchmark query's precomputed vector (no model in the timed path)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    @property
    def model_id(self) -> str:
        return "synthetic-384"

    @property
    def dimensions(self) -> int:
        return DIM

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]


async def load(dsn: str, corpus: Corpus) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP INDEX IF EXISTS search.chunks_embedding_hnsw")
        await conn.execute("TRUNCATE search.chunks")
        columns = [
            "tenant_id",
            "document_name",
            "ordinal",
            "title",
            "text",
            "labels",
            "update_time",
            "embedding",
            "embedding_model",
            "embedding_fresh",
            "content_hash",
            "applied_sequence",
        ]
        rows = corpus.rows()
        await _copy_text(conn, columns, rows)
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        await conn.execute(
            "CREATE INDEX chunks_embedding_hnsw ON search.chunks USING hnsw "
            "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        await conn.execute("ANALYZE search.chunks")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _copy_text(
    conn: asyncpg.Connection, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """COPY via a text staging table (vector and jsonb arrive as text)."""
    await conn.execute(
        "CREATE TEMP TABLE staging (tenant_id text, document_name text, ordinal int, title text, "
        "text text, labels text, update_time text, embedding text, embedding_model text, "
        "embedding_fresh bool, content_hash text, applied_sequence bigint)"
    )
    await conn.copy_records_to_table("staging", records=rows)
    await conn.execute(
        f"INSERT INTO search.chunks ({', '.join(columns)}) SELECT tenant_id, document_name, "
        "ordinal, title, text, labels::jsonb, update_time::timestamptz, embedding::vector, "
        "embedding_model, embedding_fresh, content_hash, applied_sequence FROM staging"
    )
    await conn.execute("DROP TABLE staging")


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {
        "p50_ms": pick(0.50),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
        "n": len(ordered),
    }


async def timed(run: Callable[[int], Awaitable[Any]], count: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            started = time.perf_counter()
            await run(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {**percentiles(latencies), "clients": clients, "qps": round(count / elapsed, 1)}


async def tenant_fetch(pool: asyncpg.Pool, tenant: str, sql: str, *args: Any) -> list[Any]:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
        return list(await conn.fetch(sql, *args))


async def exact_vector(pool: asyncpg.Pool, tenant: str, vec: list[float], k: int) -> list[int]:
    rows = await tenant_fetch(pool, tenant, Q["vector_exact"], vec, k, *Filters().params())
    return [r["id"] for r in rows]


async def main(
    owner: str, work: Path, server_pg: EmbeddedPostgres, args: argparse.Namespace
) -> None:
    configure_logging("bench", "warning", "json")

    result: dict[str, Any] = {
        "chunks": args.chunks,
        "tenants": TENANTS,
        "dimensions": DIM,
        "vectors": "synthetic, clustered (20 topics per tenant)",
    }
    try:
        await migrate(owner)
        phase(f"loading {args.chunks:,} synthetic chunks")
        corpus = Corpus(args.chunks)
        result["load_seconds"] = round(await load(owner, corpus), 1)
        print(f"loaded {args.chunks} chunks in {result['load_seconds']} s", flush=True)
        queries = corpus.queries(args.queries)
        lookup = LookupEmbedder({text: vec for _, text, vec in queries})

        ensure_dev_key(work)
        settings = Settings(data_dir=work, database_url=owner, log_level="warning", db_pool_max=20)
        key = load_key(work / "dev-signing-key.pem")
        tokens = {
            f"tenant-{t}": mint_token(
                key,
                tenant=f"tenant-{t}",
                user="bench",
                scopes="search:read",
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=7200,
            )
            for t in range(TENANTS)
        }
        pool = await create_pool(with_user(owner, APP_ROLE), 2, 20)
        server = ServiceServer(make_spec(lambda: lookup, run_indexer=False), settings, port=0)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        stub = pb_grpc.SearchServiceStub(channel)
        try:

            async def grpc_search(i: int, fusion: int = 0) -> pb.SearchResponse:
                tenant, text, _ = queries[i % len(queries)]
                response: pb.SearchResponse = await stub.Search(
                    pb.SearchRequest(query=text, fusion=fusion),  # type: ignore[arg-type]
                    metadata=(("authorization", f"Bearer {tokens[tenant]}"),),
                )
                return response

            async def reference_hybrid(i: int) -> list[Any]:
                tenant, text, vec = queries[i % len(queries)]
                return await tenant_fetch(pool, tenant, REFERENCE_HYBRID, text, vector_literal(vec))

            async def reference_ann(i: int) -> list[Any]:
                tenant, _, vec = queries[i % len(queries)]
                return await tenant_fetch(pool, tenant, REFERENCE_ANN, vector_literal(vec))

            for i in range(20):  # warm-up
                await grpc_search(i)
                await reference_ann(i)
            timings: dict[str, Any] = {}
            for clients in (1, 16):
                phase(f"search and the reference SQL at {clients} client(s)")
                timings[f"search_grpc_{clients}"] = await timed(grpc_search, args.queries, clients)
                timings[f"reference_ann_{clients}"] = await timed(
                    reference_ann, args.queries, clients
                )
                timings[f"reference_hybrid_{clients}"] = await timed(
                    reference_hybrid, args.reference_queries, clients
                )
                print(
                    json.dumps({k: v for k, v in timings.items() if k.endswith(f"_{clients}")}),
                    flush=True,
                )
            result["latency"] = timings
            one = timings["search_grpc_1"]
            result["ratios"] = {
                "reference_hybrid_p50_over_search_p50": round(
                    timings["reference_hybrid_1"]["p50_ms"] / one["p50_ms"], 1
                ),
                "search_p50_over_reference_ann_p50": round(
                    one["p50_ms"] / timings["reference_ann_1"]["p50_ms"], 2
                ),
            }

            # Quality: our vector leg and the reference ANN vs exact, per tenant.
            phase("recall and overlap against exact results")
            store = SearchStore(pool)
            ours, ann = [], []
            for tenant, _text, vec in queries[:100]:
                truth = set(await exact_vector(pool, tenant, vec, 10))
                hits = await store.vector_leg(tenant, vec, 100, Filters()) or []
                ours.append(len(truth & {h.key for h in hits[:10]}) / 10)
                ref = await tenant_fetch(pool, tenant, REFERENCE_ANN, vector_literal(vec))
                ann.append(len(truth & {r["id"] for r in ref}) / 10)
            # Fused results vs the same fusion computed exactly. RRF: over the full legs
            # (every any-term match over the stored tsvector, every chunk by exact
            # distance), i.e. what cutting the legs at LegDepth costs. Score fusion
            # normalises each leg over its candidates, so the cut is part of its
            # definition: exact = the same cut with exact distances (what the ANN costs).
            overlaps: dict[int, list[float]] = {pb.FUSION_SCORE: [], pb.FUSION_RRF: []}
            for tenant, text, vec in queries[: args.reference_queries]:
                kw = await tenant_fetch(
                    pool, tenant, Q["keyword_leg"], tenant, text, 1_000_000, *Filters().params()
                )
                full_vec = await tenant_fetch(
                    pool, tenant, Q["vector_exact"], vec, 1_000_000, *Filters().params()
                )
                keyword_hits = [LegHit(r["id"], float(r["score"])) for r in kw]
                vector_hits = [LegHit(r["id"], float(r["score"])) for r in full_vec]
                exact_by_fusion = {
                    pb.FUSION_SCORE: score_fusion(
                        keyword_hits[: DEFAULT_DEPTH.keyword], vector_hits[: DEFAULT_DEPTH.vector]
                    )[:10],
                    pb.FUSION_RRF: rrf(keyword_hits, vector_hits)[:10],
                }
                for fusion, exact in exact_by_fusion.items():
                    response = await grpc_search(queries.index((tenant, text, vec)), fusion)
                    # Results are chunks: compare chunk with chunk (a document's name
                    # alone would merge its chunks and cap the overlap below 1).
                    got = {r.chunk_id for r in response.results}
                    rows = await tenant_fetch(
                        pool,
                        tenant,
                        "SELECT document_name, ordinal FROM search.chunks WHERE id = ANY($1)",
                        [f.key for f in exact],
                    )
                    want = {f"{r['document_name']}/chunks/{r['ordinal']}" for r in rows}
                    overlaps[fusion].append(len(got & want) / max(1, len(want)))
            result["quality"] = {
                "vector_leg_recall_at_10": round(statistics.fmean(ours), 4),
                "vector_leg_min_recall_at_10": min(ours),
                "reference_ann_recall_at_10": round(statistics.fmean(ann), 4),
                "hybrid_overlap_at_10_with_exact_distances": round(
                    statistics.fmean(overlaps[pb.FUSION_SCORE]), 4
                ),
                "hybrid_rrf_overlap_at_10_with_exact_rrf": round(
                    statistics.fmean(overlaps[pb.FUSION_RRF]), 4
                ),
            }
            print(json.dumps(result["quality"]), flush=True)
            result["goals"] = search_goals(result)
        finally:
            await channel.close()
            await server.stop(grace=1.0)
            await pool.close()
        result["embedder"] = await embedder_throughput()
    finally:
        server_pg.stop()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))  # noqa: ASYNC240
    print_goals(result.get("goals", {}))
    print(json.dumps(result, indent=2))


def search_goals(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Issue 16's goals at one client (stated for 100k chunks; a --quick run has
    fewer, which the report's chunk count shows), and the quality speed may not
    be bought with."""
    quality = result["quality"]
    return {
        "search_p50_ms_1_client": at_most(result["latency"]["search_grpc_1"]["p50_ms"], 10.0),
        "search_p50_over_reference_ann_p50": at_most(
            result["ratios"]["search_p50_over_reference_ann_p50"], 4.0
        ),
        "vector_leg_recall_at_10": at_least(quality["vector_leg_recall_at_10"], 0.95),
        "hybrid_overlap_at_10_with_exact_distances": at_least(
            quality["hybrid_overlap_at_10_with_exact_distances"], 0.9
        ),
    }


async def embedder_throughput() -> dict[str, Any]:
    """MiniLM int8 raw throughput on ~100-word chunks, batch 32, and its time for one
    short query (`embed_query`, as the service embeds queries)."""
    from services.platform.minilm import MiniLmOnnxEmbedder

    embedder = MiniLmOnnxEmbedder()
    corpus = Corpus(0, seed=3)
    texts = [corpus.text(0) for _ in range(256)]
    await embedder.embed(texts[:32])
    started = time.perf_counter()
    await embedder.embed(texts)
    elapsed = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(50):
        await embedder.embed_query(f"short query number {i}")
    query_ms = (time.perf_counter() - started) / 50 * 1000
    return {
        "model": embedder.model_id,
        "chunks_per_second": round(len(texts) / elapsed, 1),
        "query_embedding_ms": round(query_ms, 2),
    }


# -- end to end ---------------------------------------------------------------------

E2E_TENANT = "e2e"
E2E_MODES = {
    "keyword": pb.SEARCH_MODE_KEYWORD,
    "vector": pb.SEARCH_MODE_VECTOR,
    "hybrid": pb.SEARCH_MODE_HYBRID,
}
E2E_GOAL_OVER_MODEL_MS = 10.0  # hybrid p50 ≤ this + the model's own query p50
E2E_WARMUP = 5  # rounds of searches (other queries) before timing


def end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    """The real system, real text, real embedder: see the module docstring."""
    from bench.corpora import pydoc_sections

    sections = pydoc_sections()
    rng = random.Random(args.seed)
    corpus = rng.sample(sections, args.documents)
    ingested = {id(section) for section in corpus}
    # Queries: headings of sections left out, distinct (the service caches query
    # vectors, so a repeated query would not be embedded again).
    headings = list(dict.fromkeys(s.heading for s in sections if id(s) not in ingested))
    needed = (args.queries + E2E_WARMUP) * (len(E2E_MODES) + 2)
    if len(headings) < needed:
        raise SystemExit(f"need {needed} distinct queries, the corpus has {len(headings)}")
    queries = rng.sample(headings, needed)
    with running_system() as system:  # outside the event loop: it runs loops of its own
        return asyncio.run(_end_to_end(args, system, corpus, queries))


async def _end_to_end(
    args: argparse.Namespace, system: RunningSystem, corpus: Sequence[Any], texts: list[str]
) -> dict[str, Any]:
    from services.platform.minilm import MiniLmOnnxEmbedder

    model = MiniLmOnnxEmbedder()  # as the service runs it
    spinning = MiniLmOnnxEmbedder(spinning=True)  # onnxruntime's defaults: faster alone
    model.embed_query_sync("warm up")
    spinning.embed_query_sync("warm up")
    queries = iter(texts)
    settings = system.settings
    auth = (("authorization", f"Bearer {system.token(E2E_TENANT)}"),)
    document_channel = grpc.aio.insecure_channel(settings.address_of("document"))
    search_channel = grpc.aio.insecure_channel(settings.address_of("search"))
    documents = doc_grpc.DocumentServiceStub(document_channel)
    search = pb_grpc.SearchServiceStub(search_channel)
    try:
        phase(f"ingesting {len(corpus)} python3.11-doc sections and waiting for their vectors")
        indexed = await e2e_ingest(documents, search, auth, corpus, args.index_timeout)
        print(json.dumps({"indexed": indexed}), file=sys.stderr, flush=True)
        phase(f"{args.queries} keyword, vector and hybrid searches each, interleaved")
        searches: dict[str, list[float]] = {name: [] for name in E2E_MODES}
        alone: list[float] = []
        alone_spinning: list[float] = []
        degraded = 0
        order = list(E2E_MODES)
        for round_ in range(E2E_WARMUP + args.queries):
            timed_round = round_ >= E2E_WARMUP
            for name in order[round_ % 3 :] + order[: round_ % 3]:  # rotate the order
                started = time.perf_counter()
                response = await search.Search(
                    pb.SearchRequest(query=next(queries), mode=E2E_MODES[name]),
                    metadata=auth,
                    timeout=30,
                )
                if timed_round:
                    searches[name].append(time.perf_counter() - started)
                    degraded += response.degraded
            for embedder, seconds in ((model, alone), (spinning, alone_spinning)):
                started = time.perf_counter()
                await embedder.embed_query(next(queries))
                if timed_round:
                    seconds.append(time.perf_counter() - started)
    finally:
        await document_channel.close()
        await search_channel.close()

    latency = {name: latency_summary(seconds) for name, seconds in searches.items()}
    # The model's own time: the faster of the service's settings and onnxruntime's.
    model_p50 = min(latency_summary(alone)["p50_ms"], latency_summary(alone_spinning)["p50_ms"])
    hybrid_p50 = latency["hybrid"]["p50_ms"]
    limit = round(E2E_GOAL_OVER_MODEL_MS + model_p50, 3)
    goal = at_most(hybrid_p50, limit)
    print(
        f"hybrid p50 {hybrid_p50:.1f} ms (goal ≤ {E2E_GOAL_OVER_MODEL_MS:g} ms + the model's "
        f"{model_p50:.1f} ms = {limit:.1f} ms: {'met' if goal['met'] else 'NOT met'}); keyword "
        f"{latency['keyword']['p50_ms']:.1f}, vector {latency['vector']['p50_ms']:.1f}",
        file=sys.stderr,
        flush=True,
    )
    return {
        "benchmark": "search_end_to_end",
        "system": "bench.common.running_system (protomesh up as processes), default embedder",
        "embedder": model.model_id,
        "corpus": {
            "source": "python3.11-doc sections (bench/corpora.py), title: page title",
            "seed": args.seed,
            **indexed,
        },
        "queries_per_mode": args.queries,
        "latency": latency,
        "hybrid_p50_ms": hybrid_p50,  # the figure the goal is about
        "model_query_embedding": latency_summary(alone),
        "model_query_embedding_onnxruntime_defaults": latency_summary(alone_spinning),
        "hybrid_p50_over_model_p50_ms": round(hybrid_p50 - model_p50, 3),
        "degraded_answers": degraded,
        "goals": {"hybrid_p50_ms": goal},
        "cpus": os.cpu_count(),
    }


async def e2e_ingest(
    documents: doc_grpc.DocumentServiceStub,
    search: pb_grpc.SearchServiceStub,
    auth: tuple[tuple[str, str], ...],
    corpus: Sequence[Any],
    timeout_seconds: float,
) -> dict[str, Any]:
    """Writes the corpus (one BatchCreateDocuments stream) and waits until every chunk
    has a vector; then the indexer is idle."""

    async def items() -> AsyncIterator[doc_pb.BatchCreateDocumentsRequest]:
        for i, section in enumerate(corpus):
            yield doc_pb.BatchCreateDocumentsRequest(
                document=doc_pb.Document(title=section.page_title, content=section.body),
                request_id=f"e2e-{i}",
            )

    started = time.perf_counter()
    reply = await documents.BatchCreateDocuments(items(), metadata=auth, timeout=300)
    if reply.created_count != len(corpus):
        raise RuntimeError(f"created {reply.created_count} of {len(corpus)} documents")
    while True:
        status = await search.GetIndexStatus(pb.GetIndexStatusRequest(), metadata=auth)
        if status.document_count >= len(corpus) and status.pending_embedding_count == 0:
            break
        if time.perf_counter() - started > timeout_seconds:
            raise TimeoutError(f"not indexed after {timeout_seconds:g}s: {status}")
        await asyncio.sleep(0.5)
    return {
        "documents": status.document_count,
        "chunks": status.chunk_count,
        "index_seconds": round(time.perf_counter() - started, 1),
    }


def run() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--end-to-end", action="store_true", help="the real system (see above)")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument(
        "--queries", type=int, default=None, help="default 300; --end-to-end: 30 per mode"
    )
    parser.add_argument("--reference-queries", type=int, default=24)
    parser.add_argument("--documents", type=int, default=450, help="--end-to-end: to ingest")
    parser.add_argument("--seed", type=int, default=7, help="--end-to-end: corpus and queries")
    parser.add_argument("--index-timeout", type=float, default=900.0, help="--end-to-end")
    parser.add_argument(
        "--out", default=None, help="JSON file (default bench-search.json; --end-to-end: none)"
    )
    args = parser.parse_args()
    if args.end_to_end:
        args.queries = args.queries or 30
        result = end_to_end(args)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result, indent=2))
        print_goals(result["goals"])
        print(json.dumps(result, indent=2))
        return
    args.queries = args.queries or 300
    args.out = args.out or "bench-search.json"
    work = Path(tempfile.mkdtemp(prefix="pmb"))
    server_pg = EmbeddedPostgres(work / "pg")
    owner = server_pg.start()  # synchronous (it runs its own event loop)
    asyncio.run(main(owner, work, server_pg, args))


if __name__ == "__main__":
    run()

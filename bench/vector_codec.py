"""How vectors travel to PostgreSQL: pgvector's binary asyncpg codec
(`pgvector.asyncpg.register_vector`, what every pool uses) against the text
literals ('[0.1,0.2,...]' cast with ::text::vector) the store used before.

Measured side by side in one process on embedded PostgreSQL + pgvector, over a
table of `--rows` random unit 384-d vectors with an HNSW index:
- search: one ANN query (ORDER BY embedding <=> $1 LIMIT 100), as the vector
  leg sends it, p50/p95 over `--queries` queries;
- ingest: storing a batch of 32 vectors by id (UPDATE … FROM unnest), as the
  embedding pass does, p50/p95 over `--batches` batches;
- encode: the client-side cost of turning one vector into a parameter.

    .venv/bin/python -m bench.vector_codec [--rows 20000] [--queries 300] [--batches 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector import Vector
from pgvector.asyncpg import register_vector

from bench.common import latency_summary
from bench.goals import at_most, phase, print_goals
from services.platform.embedded import EmbeddedPostgres

DIMENSIONS = 384
SEARCH = {
    "text": "SELECT id FROM bench_vectors ORDER BY embedding <=> $1::text::vector LIMIT 100",
    "binary": "SELECT id FROM bench_vectors ORDER BY embedding <=> $1::vector LIMIT 100",
}
STORE = {
    "text": "UPDATE bench_vectors b SET embedding = v.e::vector "
    "FROM unnest($1::bigint[], $2::text[]) AS v(id, e) WHERE b.id = v.id",
    "binary": "UPDATE bench_vectors b SET embedding = v.e "
    "FROM unnest($1::bigint[], $2::vector[]) AS v(id, e) WHERE b.id = v.id",
}


def literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def timed(call: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await call
    return time.perf_counter() - started


async def run(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    setup = await asyncpg.connect(dsn)
    await setup.execute("CREATE EXTENSION IF NOT EXISTS vector")
    await setup.execute(
        f"CREATE TABLE bench_vectors (id bigint PRIMARY KEY, embedding vector({DIMENSIONS}))"
    )
    await register_vector(setup)
    rows = unit_vectors(rng, args.rows)
    await setup.copy_records_to_table(
        "bench_vectors", records=[(i, rows[i]) for i in range(args.rows)]
    )
    await setup.execute("CREATE INDEX ON bench_vectors USING hnsw (embedding vector_cosine_ops)")
    await setup.execute("ANALYZE bench_vectors")
    await setup.close()

    text_conn = await asyncpg.connect(dsn)
    binary_conn = await asyncpg.connect(dsn)
    await register_vector(binary_conn)
    connections = {"text": text_conn, "binary": binary_conn}
    queries = unit_vectors(rng, args.queries)
    batches = [
        (rng.choice(args.rows, 32, replace=False).tolist(), unit_vectors(rng, 32))
        for _ in range(args.batches)
    ]

    def param(codec: str, vector: np.ndarray) -> Any:
        # An ndarray inside an array parameter reads as a nested dimension: wrap it.
        return literal(vector) if codec == "text" else Vector(vector)

    results: dict[str, dict[str, Any]] = {}
    # Alternate the codecs in rounds so machine noise hits both alike.
    search: dict[str, list[float]] = {"text": [], "binary": []}
    store: dict[str, list[float]] = {"text": [], "binary": []}
    rounds = 5
    for r in range(rounds):
        for codec, conn in connections.items():
            for vector in queries[r::rounds]:
                search[codec].append(await timed(conn.fetch(SEARCH[codec], param(codec, vector))))
            for ids, vectors in batches[r::rounds]:
                store[codec].append(
                    await timed(conn.execute(STORE[codec], ids, [param(codec, v) for v in vectors]))
                )
    for codec in connections:
        started = time.perf_counter()
        for vector in queries:
            (literal(vector) if codec == "text" else register_encode(vector))
        encode_us = (time.perf_counter() - started) / len(queries) * 1e6
        results[codec] = {
            "search": latency_summary(search[codec]),
            "store_32": latency_summary(store[codec]),
            "encode_us_per_vector": round(encode_us, 1),
        }
    await text_conn.close()
    await binary_conn.close()
    result: dict[str, Any] = {
        "benchmark": "vector_codec",
        "rows": args.rows,
        "dimensions": DIMENSIONS,
        "results": results,
        "binary_over_text": {
            "search_p50": round(
                results["binary"]["search"]["p50_ms"] / results["text"]["search"]["p50_ms"], 3
            ),
            "store_32_p50": round(
                results["binary"]["store_32"]["p50_ms"] / results["text"]["store_32"]["p50_ms"], 3
            ),
        },
    }
    ratios = result["binary_over_text"]
    # The binary codec was adopted for speed (issue 13): it may not be slower.
    result["goals"] = {
        "binary_over_text_search_p50": at_most(ratios["search_p50"], 1.0),
        "binary_over_text_store_32_p50": at_most(ratios["store_32_p50"], 1.0),
    }
    return result


def register_encode(vector: np.ndarray) -> bytes:
    """What the binary codec does per vector on the client."""
    return bytes(Vector(vector).to_binary())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmv") as tmp:
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = postgres.start()
        try:
            phase(f"{args.rows:,} vectors stored and searched as text and binary")
            result = asyncio.run(run(dsn, args))
        finally:
            postgres.stop()
    print_goals(result["goals"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

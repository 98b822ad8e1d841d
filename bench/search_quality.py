"""Search quality: nDCG@10 and recall@10 of KEYWORD, VECTOR and HYBRID on an offline
labelled set, through the real services (DocumentService → indexer → SearchService,
the default MiniLM embedder, embedded PostgreSQL).

The set is built reproducibly from what every Python installation ships: the
docstrings of a fixed list of standard-library modules. Each public function,
class or method whose docstring has a one-line summary and a body of at least
`--min-body` characters gives one document (title: its qualified name's last part
with underscores as spaces; content: the body without the summary) and one query
(the summary line). The only relevant document of a query is the one it was taken
from. Summaries paraphrase their bodies without repeating them, so neither exact
keyword overlap nor the title alone answers them; documents are sampled with a
fixed seed. (No package ships a retrieval benchmark with judgments — see
../shared/NOTES.md — and Debian's python3.11-doc would need an install.)

Prints JSON with both measures per mode and the goal: hybrid nDCG@10 at least the
better single leg's + 0.02.

    .venv/bin/python -m bench.search_quality [--documents 1200] [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import os
import random
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import ir_measures
from ir_measures import R, nDCG

from bench.common import ALL_SCOPES
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from services.cli.launcher import free_ports
from services.document.service import SPEC as DOCUMENT_SPEC
from services.platform.config import Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.logs import configure_logging
from services.platform.migrations import migrate
from services.platform.server import ServiceServer
from services.search.service import make_spec

MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "configparser",
    "contextlib", "copy", "csv", "datetime", "decimal", "difflib", "email.message",
    "fractions", "functools", "glob", "gzip", "hashlib", "heapq", "hmac", "html",
    "http.client", "http.cookies", "imaplib", "inspect", "ipaddress", "itertools", "json",
    "logging", "mailbox", "math", "mimetypes", "os", "os.path", "pathlib", "pickle",
    "pprint", "queue", "random", "re", "sched", "secrets", "selectors", "shlex", "shutil",
    "smtplib", "socket", "sqlite3", "ssl", "statistics", "string", "struct", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize", "traceback",
    "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "wave", "weakref",
    "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zlib",
)  # fmt: skip
# mode name → (mode, bm25 weight, vector weight); None weights = the defaults (0.5/0.5).
MODES: dict[str, tuple[int, float | None, float | None]] = {
    "keyword": (pb.SEARCH_MODE_KEYWORD, None, None),
    "vector": (pb.SEARCH_MODE_VECTOR, None, None),
    "hybrid": (pb.SEARCH_MODE_HYBRID, None, None),
    "hybrid_bm25_0.3_vector_0.7": (pb.SEARCH_MODE_HYBRID, 0.3, 0.7),
}


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    body: str
    query: str


def examples(min_body: int) -> Iterator[Example]:
    """(qualified name, title, body, summary) of every usable docstring, in a fixed order."""
    seen: set[str] = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, value in sorted(vars(module).items()):
            if name.startswith("_") or getattr(value, "__module__", module_name) != module_name:
                continue
            members = [(name, value)]
            if inspect.isclass(value):
                members += [
                    (f"{name}.{m}", v)
                    for m, v in sorted(vars(value).items())
                    if not m.startswith("_") and callable(v)
                ]
            for qualified, member in members:
                found = _split(inspect.getdoc(member) or "", min_body)
                key = f"{module_name}.{qualified}"
                if found is None or key in seen or found[1] in seen:
                    continue
                seen |= {key, found[1]}
                title = qualified.rsplit(".", 1)[-1].replace("_", " ")
                yield Example(key, title, found[1], found[0])


def _split(doc: str, min_body: int) -> tuple[str, str] | None:
    summary, _, body = doc.strip().partition("\n\n")
    summary, body = " ".join(summary.split()), body.strip()
    if not 20 <= len(summary) <= 200 or len(body) < min_body or summary in body:
        return None
    return summary, body


@dataclass
class Stack:
    documents: doc_grpc.DocumentServiceStub
    search: pb_grpc.SearchServiceStub
    auth: tuple[tuple[str, str], ...]


@contextlib.asynccontextmanager
async def running(owner: str, work: Path) -> AsyncIterator[Stack]:
    await migrate(owner)
    ensure_dev_key(work)
    document_port, search_port = free_ports(2)
    settings = Settings(
        data_dir=work,
        database_url=owner,
        log_level="warning",
        document_address=f"127.0.0.1:{document_port}",
    )
    token = mint_token(
        load_key(work / "dev-signing-key.pem"),
        tenant="quality",
        user="bench",
        scopes=ALL_SCOPES,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=7200,
    )
    documents = ServiceServer(DOCUMENT_SPEC, settings, port=document_port)
    search = ServiceServer(make_spec(run_indexer=True), replace(settings), port=search_port)
    await documents.start()
    await search.start()
    doc_channel = grpc.aio.insecure_channel(f"127.0.0.1:{document_port}")
    search_channel = grpc.aio.insecure_channel(f"127.0.0.1:{search_port}")
    try:
        yield Stack(
            doc_grpc.DocumentServiceStub(doc_channel),
            pb_grpc.SearchServiceStub(search_channel),
            (("authorization", f"Bearer {token}"),),
        )
    finally:
        await doc_channel.close()
        await search_channel.close()
        await search.stop(grace=1.0)
        await documents.stop(grace=1.0)


async def ingest(stack: Stack, corpus: list[Example]) -> dict[str, str]:
    """Stores the corpus; returns document name → example key."""

    async def items() -> AsyncIterator[doc_pb.BatchCreateDocumentsRequest]:
        for i, example in enumerate(corpus):
            yield doc_pb.BatchCreateDocumentsRequest(
                document=doc_pb.Document(title=example.title, content=example.body),
                request_id=f"quality-{i}",
            )

    reply = await stack.documents.BatchCreateDocuments(items(), metadata=stack.auth)
    return {r.name: corpus[r.index].key for r in reply.results if r.name}


async def wait_indexed(stack: Stack, count: int, limit_seconds: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit_seconds:
        status = await stack.search.GetIndexStatus(pb.GetIndexStatusRequest(), metadata=stack.auth)
        if status.document_count >= count and status.pending_embedding_count == 0:
            return time.perf_counter() - started
        await asyncio.sleep(1.0)
    raise TimeoutError(f"the index was not complete after {limit_seconds:g}s")


async def evaluate(
    stack: Stack, queries: list[Example], names: dict[str, str]
) -> dict[str, dict[str, float]]:
    qrels = {q.key: {q.key: 1} for q in queries}
    scores: dict[str, dict[str, float]] = {}
    for mode_name, (mode, bm25_weight, vector_weight) in MODES.items():
        run: dict[str, dict[str, float]] = {}
        for query in queries:
            request = pb.SearchRequest(query=query.query, mode=mode, page_size=50)  # type: ignore[arg-type]
            if bm25_weight is not None:
                request.bm25_weight, request.vector_weight = bm25_weight, vector_weight
            response = await stack.search.Search(request, metadata=stack.auth)
            ranked: dict[str, float] = {}
            for result in response.results:  # chunks → documents, first (best) chunk wins
                key = names.get(result.document_name)
                if key is not None and key not in ranked:
                    ranked[key] = float(len(response.results) - len(ranked))
            run[query.key] = ranked or {"-": 0.0}
        measured = ir_measures.calc_aggregate([nDCG @ 10, R @ 10], qrels, run)
        scores[mode_name] = {
            "ndcg_at_10": round(float(measured[nDCG @ 10]), 4),
            "recall_at_10": round(float(measured[R @ 10]), 4),
        }
    return scores


async def run(owner: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    every = list(examples(args.min_body))
    rng = random.Random(args.seed)
    corpus = rng.sample(every, min(args.documents, len(every)))
    queries = rng.sample(corpus, min(args.queries, len(corpus)))
    async with running(owner, work) as stack:
        names = await ingest(stack, corpus)
        index_seconds = await wait_indexed(stack, len(names), args.index_timeout)
        scores = await evaluate(stack, queries, names)
    best_leg = max(scores["keyword"]["ndcg_at_10"], scores["vector"]["ndcg_at_10"])
    margin = round(scores["hybrid"]["ndcg_at_10"] - best_leg, 4)
    return {
        "benchmark": "search_quality",
        "corpus": {
            "source": "Python standard-library docstrings (summary → body), seed "
            f"{args.seed}, {len(MODULES)} modules",
            "available_examples": len(every),
            "documents": len(corpus),
            "queries": len(queries),
        },
        "index_seconds": round(index_seconds, 1),
        "scores": scores,
        "hybrid_ndcg_over_best_leg": margin,
        "goal": {"hybrid_margin_min": 0.02, "met": margin >= 0.02},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--documents", type=int, default=1200)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--min-body", type=int, default=100, help="shortest usable body")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--index-timeout", type=float, default=900.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmq") as tmp, open(os.devnull, "w") as sink:
        configure_logging("bench", "warning", "json", stream=sink)
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        owner = postgres.start()
        try:
            result = asyncio.run(run(owner, Path(tmp), args))
        finally:
            postgres.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

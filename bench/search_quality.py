"""Search quality: nDCG@10 and recall@10 of KEYWORD, VECTOR and HYBRID (and fusion
variants) on offline labelled sets of different shapes, through the real services
(DocumentService → indexer → SearchService, the default MiniLM embedder, embedded
PostgreSQL), plus how much of the indexed text the embedder never sees (truncation).

Sets (`--sets`, default all), each ingested as a tenant of its own:
- `docstrings` — what every Python installation ships: the docstrings of a fixed list
  of standard-library modules. Each public function, class or method whose docstring
  has a one-line summary and a body of at least `--min-body` characters gives one
  document (title: its name with underscores as spaces; content: the body without the
  summary) and one query (the summary line). Summaries paraphrase their bodies without
  repeating them. Documents are sampled with a fixed seed.
- `pydoc` — title → section from Debian's python3.11-doc reST sources
  (`bench.corpora.pydoc_sections`: fetched with apt-get download, no root): a document
  per section (title: the page title; content: the section body without its heading),
  the query is the section heading. A different shape: short keyword-like queries
  against long technical sections.
- `pgdoc` — the same shape from Debian's postgresql-doc-15 HTML
  (`bench.corpora.pg_sections`, usable sections only). Held out: no ranking or
  fusion setting was chosen on it.
The only relevant document of a query is the one it was taken from.

Truncation: for every chunk of a set, tokens of what the embedder is given (title +
chunk text, MiniLM's WordPiece, special tokens included) beyond its 128-token input,
over all such tokens (goal 0).

Prints JSON with both measures per mode and set, and the goal per set: hybrid nDCG@10 at
least the better single leg's + 0.02.

    .venv/bin/python -m bench.search_quality [--sets docstrings,pydoc,pgdoc] [--documents 1200]
        [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import itertools
import json
import os
import random
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import ir_measures
from ir_measures import R, nDCG

from bench import corpora
from bench.common import ALL_SCOPES
from bench.goals import at_least, at_most, phase, print_goals
from cli.launcher import free_ports
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from services.document.service import SPEC as DOCUMENT_SPEC
from services.platform.config import Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.logs import configure_logging
from services.platform.migrations import migrate
from services.platform.minilm import MiniLmOnnxEmbedder
from services.platform.server import ServiceServer
from services.search.indexer import embedding_input
from services.search.service import make_spec

HYBRID_MARGIN_MIN = 0.02  # hybrid nDCG@10 over its better leg, per set (issue 13)

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
# mode name → SearchRequest fields (weights unset = the service's defaults).
MODES: dict[str, dict[str, Any]] = {
    "keyword": {"mode": pb.SEARCH_MODE_KEYWORD},
    "vector": {"mode": pb.SEARCH_MODE_VECTOR},
    "hybrid": {"mode": pb.SEARCH_MODE_HYBRID},
    "hybrid_rrf": {"mode": pb.SEARCH_MODE_HYBRID, "fusion": pb.FUSION_RRF},  # before 2026-12-04
    "hybrid_rrf_bm25_0.3_vector_0.7": {
        "mode": pb.SEARCH_MODE_HYBRID,
        "fusion": pb.FUSION_RRF,
        "bm25_weight": 0.3,
        "vector_weight": 0.7,
    },
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
    settings: Settings
    work: Path

    def auth(self, tenant: str) -> tuple[tuple[str, str], ...]:
        token = mint_token(
            load_key(self.work / "dev-signing-key.pem"),
            tenant=tenant,
            user="bench",
            scopes=ALL_SCOPES,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            ttl_seconds=7200,
        )
        return (("authorization", f"Bearer {token}"),)


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
            settings,
            work,
        )
    finally:
        await doc_channel.close()
        await search_channel.close()
        await search.stop(grace=1.0)
        await documents.stop(grace=1.0)


async def ingest(stack: Stack, tenant: str, corpus: Sequence[Example]) -> dict[str, str]:
    """Stores the corpus as `tenant` (one BatchCreateDocuments stream); returns
    document name → example key."""

    async def items() -> AsyncIterator[doc_pb.BatchCreateDocumentsRequest]:
        for i, example in enumerate(corpus):
            yield doc_pb.BatchCreateDocumentsRequest(
                document=doc_pb.Document(title=example.title, content=example.body),
                request_id=f"quality-{i}",
            )

    reply = await stack.documents.BatchCreateDocuments(items(), metadata=stack.auth(tenant))
    return {r.name: corpus[r.index].key for r in reply.results if r.name}


async def wait_indexed(stack: Stack, tenant: str, count: int, limit_seconds: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit_seconds:
        status = await stack.search.GetIndexStatus(
            pb.GetIndexStatusRequest(), metadata=stack.auth(tenant)
        )
        if status.document_count >= count and status.pending_embedding_count == 0:
            return time.perf_counter() - started
        await asyncio.sleep(1.0)
    raise TimeoutError(f"the index was not complete after {limit_seconds:g}s")


async def truncation(owner: str, tenant: str) -> dict[str, Any]:
    """How much of what the indexer embeds for `tenant` lies beyond the embedder's
    input (MiniLM's own tokenizer, special tokens included)."""
    counter = MiniLmOnnxEmbedder().token_counter
    conn = await asyncpg.connect(owner)
    try:
        rows = await conn.fetch(
            "SELECT title, text FROM search.chunks WHERE tenant_id = $1", tenant
        )
    finally:
        await conn.close()
    total = beyond = longer = 0
    for row in rows:
        tokens = counter.special_tokens + sum(
            counter.counts(embedding_input(row["title"], row["text"]).split())
        )
        total += tokens
        beyond += max(0, tokens - counter.max_tokens)
        longer += tokens > counter.max_tokens
    return {
        "chunks": len(rows),
        "chunks_longer_than_input": longer,
        "truncated_token_share": round(beyond / total, 4) if total else 0.0,
    }


async def evaluate(
    stack: Stack, tenant: str, queries: Sequence[Example], names: dict[str, str]
) -> dict[str, dict[str, float]]:
    qrels = {q.key: {q.key: 1} for q in queries}
    scores: dict[str, dict[str, float]] = {}
    auth = stack.auth(tenant)
    for mode_name, fields in MODES.items():
        run: dict[str, dict[str, float]] = {}
        for query in queries:
            request = pb.SearchRequest(query=query.query, page_size=50, **fields)
            response = await stack.search.Search(request, metadata=auth)
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


def labelled_set(name: str, args: argparse.Namespace) -> tuple[str, list[Example], list[Example]]:
    """(description, corpus, queries) of a set, sampled with the seed."""
    rng = random.Random(args.seed)
    if name == "docstrings":
        every = list(examples(args.min_body))
        corpus = rng.sample(every, min(args.documents, len(every)))
        queries = rng.sample(corpus, min(args.queries, len(corpus)))
        source = (
            f"Python standard-library docstrings (summary → body), {len(MODULES)} modules, "
            f"{len(every)} usable"
        )
        return source, corpus, queries
    if name in ("pydoc", "pgdoc"):
        if name == "pydoc":
            sections = corpora.pydoc_sections()
            package = "python3.11-doc"
        else:
            pages = itertools.groupby(corpora.pg_sections(), key=lambda s: s.page_title)
            sections = corpora.usable_sections((title, list(group)) for title, group in pages)
            package = corpora.PGDOC_PACKAGE
        documents = min(args.documents, len(sections))
        chosen, asked = corpora.retrieval_set(
            sections, documents, min(args.queries, documents), args.seed
        )

        def example(section: corpora.Section) -> Example:
            return Example(section.key, section.page_title, section.body, section.heading)

        tree = corpora.fetch_package(package, corpora.default_cache())
        version = corpora.provenance(tree).get("version", "?")
        source = f"{package} {version} (heading → section), {len(sections)} usable"
        return source, [example(s) for s in chosen], [example(s) for s in asked]
    raise ValueError(f"unknown set {name!r} (docstrings, pydoc, pgdoc)")


async def run_set(stack: Stack, owner: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    source, corpus, queries = labelled_set(name, args)
    tenant = f"quality-{name}"
    names = await ingest(stack, tenant, corpus)
    index_seconds = await wait_indexed(stack, tenant, len(names), args.index_timeout)
    scores = await evaluate(stack, tenant, queries, names)
    best_leg = max(scores["keyword"]["ndcg_at_10"], scores["vector"]["ndcg_at_10"])
    margin = round(scores["hybrid"]["ndcg_at_10"] - best_leg, 4)
    return {
        "corpus": {
            "source": f"{source}, seed {args.seed}",
            "documents": len(corpus),
            "queries": len(queries),
        },
        "index_seconds": round(index_seconds, 1),
        "truncation": await truncation(owner, tenant),
        "scores": scores,
        "hybrid_ndcg_over_best_leg": margin,
    }


async def run(owner: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    sets: dict[str, Any] = {}
    async with running(owner, work) as stack:
        for name in args.sets.split(","):
            phase(f"set {name.strip()}: ingest, index, {args.queries} queries per mode")
            sets[name] = await run_set(stack, owner, name.strip(), args)
    goals: dict[str, dict[str, Any]] = {}
    for name, found in sets.items():
        goals[f"{name}.hybrid_ndcg_over_best_leg"] = at_least(
            found["hybrid_ndcg_over_best_leg"], HYBRID_MARGIN_MIN
        )
        goals[f"{name}.truncated_token_share"] = at_most(
            found["truncation"]["truncated_token_share"], 0.0
        )
    return {"benchmark": "search_quality", "sets": sets, "goals": goals}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sets", default="docstrings,pydoc,pgdoc", help="comma-separated sets")
    parser.add_argument("--documents", type=int, default=1200, help="per set, at most")
    parser.add_argument("--queries", type=int, default=300, help="per set, at most")
    parser.add_argument("--min-body", type=int, default=100, help="shortest docstring body")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--index-timeout", type=float, default=1800.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pmq") as tmp, open(os.devnull, "w") as sink:
        configure_logging("bench", "warning", "json", stream=sink)
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        owner = postgres.start()
        try:
            result = asyncio.run(run(owner, Path(tmp), args))
        finally:
            postgres.stop()
    print_goals(result["goals"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

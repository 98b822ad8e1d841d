"""Answer quality of `rag.answer`, end to end through the real services:
DocumentService → indexer (the default MiniLM embedder) → SearchService, and
TaskService + an in-process task worker + CostService, on embedded PostgreSQL.

`--corpus pgdoc-qa` (default): the "pgdoc-qa" set of `bench.corpora` (sections of the
PostgreSQL 15 documentation; answerable questions derived from one sentence of a section,
the "support"; unanswerable ones on topics the documentation does not cover). Each corpus
section is ingested as one document (title: the page title; content:
"## {heading}\\n\\n{body}"), the bench waits until the index is complete (keyword and
vector), then asks one `rag.answer` task per question (input {"question", "top_k"})
through TaskService.CreateTask and follows it with WatchTask to its end, then reads the
answer artifact with GetTask. A subset of the questions (`--latency-questions`, spread
evenly over the list, both kinds) is asked first one at a time for an honest end-to-end
latency; the rest with `--concurrency` tasks in flight.

Definitions (see `judge` and `summarise`; a "verified citation" is a citation part of
the answer artifact — `rag.answer` keeps only the ones its verifier supported):
- answered: the task COMPLETED, its text is not the abstention text (`ABSTENTION`,
  the extractive generator's) and its verification report counts >= 1 supported
  citation. Anything else is an abstention (or, if the task did not complete, a failure).
- support chunks of an answerable question: the chunks of the support's section
  document whose text contains the support sentence (both whitespace-normalised and
  lowercased), found with a KEYWORD Search for the support filtered to that document.
- correct citation: a verified citation whose chunk is a support chunk. When no chunk
  contains the whole support (the chunker cut the sentence across windows), the quote
  rule decides instead and the question counts in `support_not_located`.
- quote rule (stricter; reported beside): the cited document is the support's section
  document AND, normalised as above, the support is inside the quote, or the quote
  (>= 3 content words) is inside the support, or the quote holds >= 60% of the support's
  content words (words of 2+ letters/digits outside a small stop-word list).
- answer_rate: answered / answerable questions.
- answered_with_correct_citation: answerable questions with >= 1 correct citation /
  answerable questions (goal >= 0.8).
- citation_precision: over all verified citations of answered answerable questions, the
  share citing the support's section document (goal >= 0.9); `_chunk` and `_quote` are
  the shares that are correct citations and that meet the quote rule.
- abstention_rate: unanswerable questions not answered / unanswerable questions
  (goal >= 0.9).
- latency: CreateTask sent → terminal status seen on WatchTask, in ms, concurrency 1.

Every question's record (question, support, answer text, citations with their
judgements, correct/abstained) goes to `answers.jsonl` in `--out` (default: a new temp
dir, kept; never inside the repository).

`--corpus docs`: ingests README.md and docs/*.md as `protomesh ingest` would and asks a
fixed list of questions about protomesh (`DOCS_QUESTIONS`), printing each answer — a
smoke eval for the README's `protomesh ask` example.

`--corpus research`: ingests the same docs corpus and runs one `research` task (depth
`RESEARCH_DEPTH`, top_k `RESEARCH_TOP_K`, no plan confirmation) per topic of
`RESEARCH_TOPICS`, one at a time, each followed to its end. The report artifact is split
into its `## {sub-question}` sections and "Not covered by the sources"; every verified
citation is placed in the section that makes it. Per topic and overall: sub-questions
planned, sections written / answered (>= 1 verified citation) / not covered, verified
citations, citation precision (verified citations whose document is one of the topic's
expected files), whether every written section has a verified citation, and the
end-to-end latency (see `research_figures`); records go to `research.jsonl` in `--out`.

    .venv/bin/python -m bench.answer_quality [--sections 300 --answerable 150
        --unanswerable 60] [--seed 7] [--concurrency 4] [--out DIR] [--generator env]
    .venv/bin/python -m bench.answer_quality --corpus docs
    .venv/bin/python -m bench.answer_quality --corpus research
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from bench.common import ALL_SCOPES, latency_summary
from bench.goals import print_goals
from cli.launcher import free_ports
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as pb
from protomesh.task.v1 import task_service_pb2_grpc as pb_grpc
from services.cost.service import make_spec as cost_spec
from services.document.service import SPEC as DOCUMENT_SPEC
from services.platform.config import GeneratorSettings, Settings
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import ensure_dev_key, load_key, mint_token
from services.platform.logs import configure_logging
from services.platform.migrations import migrate
from services.platform.server import ServiceServer
from services.search.service import make_spec as search_spec
from services.task.generation import Generator, generator_from_settings
from services.task.service import SPEC as TASK_SPEC
from services.task.worker import build_worker, create_worker_pool

REPO_ROOT = Path(__file__).resolve().parent.parent
TENANT = "answers"


def _abstention() -> str:
    """What the offline extractive generator answers when the sources do not answer
    (its module's `ABSTENTION`; the text it has always used if that is not found)."""
    for module in ("services.task.extractive", "services.task.generation"):
        with contextlib.suppress(ImportError):
            text = getattr(importlib.import_module(module), "ABSTENTION", None)
            if isinstance(text, str) and text:
                return text
    return "The retrieved documents do not answer this question."


ABSTENTION = _abstention()
GOALS = {
    "answered_with_correct_citation": 0.8,
    "citation_precision": 0.9,
    "abstention_rate": 0.9,
}
QUOTE_OVERLAP = 0.6  # share of the support's content words a matching quote holds
QUOTE_MIN_WORDS = 3  # content words a quote needs to count as a fragment of the support
TASK_TIMEOUT_SECONDS = 300.0
COMPLETED = "COMPLETED"
TERMINAL = frozenset(
    {
        pb.TASK_STATE_COMPLETED,
        pb.TASK_STATE_FAILED,
        pb.TASK_STATE_CANCELED,
        pb.TASK_STATE_REJECTED,
        pb.TASK_STATE_INPUT_REQUIRED,  # rag.answer never asks; do not wait forever if it did
        pb.TASK_STATE_AUTH_REQUIRED,
    }
)
_RETRIED = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}

# Questions the repository's documentation answers, with the files that hold the answer.
DOCS_QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("how are tenants kept apart?", ("README.md", "docs/platform.md", "docs/search.md")),
    ("what happens when the embedder is unavailable?", ("docs/search.md",)),
    ("how does read-your-writes work in search?", ("docs/search.md", "docs/scaling.md")),
    ("How does protomesh avoid overspending a model budget?", ("README.md", "docs/agents.md")),
    ("Which embedders can the search service use?", ("docs/search.md",)),
    ("How does hybrid search combine the keyword and vector legs?", ("docs/search.md",)),
    ("What tools does the MCP endpoint offer?", ("docs/agents.md",)),
    ("How is a trace carried through the task queue?", ("docs/observability.md",)),
    ("What does the platform give a service handler?", ("docs/platform.md",)),
    ("What runs when protomesh is deployed beyond one machine?", ("docs/scaling.md",)),
)

# --------------------------------------------------------------------------- scoring (pure)

_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORD_TEXT = (
    "a an and are as at be been by can do does for from has have how i if in into is it "
    "its may might must no not of on or such than that the their them then there these they "
    "this those to was were what when where which while who why will with would you your "
    "also only other some any all each more most"
)
STOP_WORDS = frozenset(_STOP_WORD_TEXT.split())


def normalise(text: str) -> str:
    """Lowercased, whitespace runs collapsed to one space, trimmed."""
    return " ".join(text.lower().split())


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in STOP_WORDS}


def is_abstention(text: str) -> bool:
    return normalise(ABSTENTION) in normalise(text) or not text.strip()


def quote_matches_support(quote: str, support: str) -> bool:
    """The quote rule's text part: the support inside the quote, the quote (with at least
    `QUOTE_MIN_WORDS` content words) inside the support, or the quote holding at least
    `QUOTE_OVERLAP` of the support's content words."""
    q, s = normalise(quote), normalise(support)
    if not q or not s:
        return False
    if s in q:
        return True
    if q in s and len(content_words(q)) >= QUOTE_MIN_WORDS:
        return True
    wanted = content_words(s)
    return bool(wanted) and len(wanted & content_words(q)) / len(wanted) >= QUOTE_OVERLAP


def chunks_containing(support: str, chunks: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Ids of the (chunk id, text) pairs whose normalised text contains the support."""
    wanted = normalise(support)
    return frozenset(chunk_id for chunk_id, text in chunks if wanted and wanted in normalise(text))


@dataclass(frozen=True)
class Citation:
    """One citation part of an answer artifact."""

    source: int
    document: str
    chunk_id: str
    title: str
    quote: str
    claim: str


@dataclass(frozen=True)
class Outcome:
    """What a `rag.answer` task produced."""

    state: str  # TaskState name without its prefix, e.g. COMPLETED
    text: str = ""
    citations: tuple[Citation, ...] = ()
    supported: int = 0  # supported citations in the verification report
    model: str = ""
    error: str = ""
    checked: int = 0  # citations the verification report checked (supported or not)
    message: str = ""  # the task's status message

    @property
    def answered(self) -> bool:
        return (
            self.state == COMPLETED
            and not is_abstention(self.text)
            and self.supported > 0
            and bool(self.citations)
        )


def outcome_of(task: pb.Task) -> Outcome:
    """The answer text, verified citations and verification report of a finished task."""
    state = pb.TaskState.Name(task.status.state).removeprefix("TASK_STATE_")
    error = task.error.message or (task.status.message if state != COMPLETED else "")
    artifacts = [a for a in task.artifacts if a.name == "answer"] or list(task.artifacts)
    if not artifacts:
        return Outcome(state, error=error or "no artifact")
    artifact = artifacts[-1]
    texts: list[str] = []
    citations: list[Citation] = []
    supported: int | None = None
    checked: int | None = None
    for part in artifact.parts:
        if part.WhichOneof("content") == "text":
            texts.append(part.text)
            continue
        data = MessageToDict(part.data)
        if data.get("kind") == "citation":
            citations.append(
                Citation(
                    int(data.get("source", 0)),
                    str(data.get("document", "")),
                    str(data.get("chunk_id", "")),
                    str(data.get("title", "")),
                    str(data.get("quote", "")),
                    str(data.get("claim", "")),
                )
            )
        elif data.get("kind") == "verification":
            supported = int(data.get("supported", 0))
            checked = int(data.get("citations", 0))
    model = str(MessageToDict(artifact.metadata).get("model", ""))
    return Outcome(
        state,
        "\n".join(texts),
        tuple(citations),
        len(citations) if supported is None else supported,
        model,
        error,
        checked=len(citations) if checked is None else checked,
        message=task.status.message,
    )


@dataclass
class Record:
    """One question, its answer and how it was judged (a line of answers.jsonl)."""

    key: str
    question: str
    answerable: bool
    support: str
    section_key: str
    support_document: str
    task: str
    state: str
    answer: str
    supported_citations: int
    citations: list[dict[str, Any]]
    answered: bool
    correct: bool | None  # answerable: >= 1 correct citation
    correct_quote_rule: bool | None  # answerable: >= 1 citation meeting the quote rule
    support_located: bool | None  # answerable: some chunk contains the whole support
    abstained: bool | None  # unanswerable: not answered
    latency_ms: float
    phase: str
    error: str = ""


def judge(
    key: str,
    question: str,
    answerable: bool,
    support: str,
    section_key: str,
    support_document: str,
    support_chunks: frozenset[str],
    outcome: Outcome,
    task: str = "",
    latency_ms: float = 0.0,
    phase: str = "",
) -> Record:
    """Judges every verified citation (see the module docstring) and the answer."""
    answered = outcome.answered
    judged: list[dict[str, Any]] = []
    for citation in outcome.citations:
        right_document = bool(support_document) and citation.document == support_document
        quote_rule = right_document and quote_matches_support(citation.quote, support)
        in_chunk = citation.chunk_id in support_chunks
        judged.append(
            {
                **asdict(citation),
                "right_document": right_document,
                "in_support_chunk": in_chunk,
                "quote_matches_support": quote_rule,
                "correct": in_chunk if support_chunks else quote_rule,
            }
        )
    return Record(
        key=key,
        question=question,
        answerable=answerable,
        support=support,
        section_key=section_key,
        support_document=support_document,
        task=task,
        state=outcome.state,
        answer=outcome.text,
        supported_citations=outcome.supported,
        citations=judged,
        answered=answered,
        correct=(answered and any(c["correct"] for c in judged)) if answerable else None,
        correct_quote_rule=(
            (answered and any(c["quote_matches_support"] for c in judged)) if answerable else None
        ),
        support_located=bool(support_chunks) if answerable else None,
        abstained=None if answerable else not answered,
        latency_ms=round(latency_ms, 3),
        phase=phase,
        error=outcome.error,
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarise(records: Sequence[Record]) -> dict[str, Any]:
    """The figures over all records (None where a share has no denominator)."""
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    answered = [r for r in answerable if r.answered]
    citations = [c for r in answered for c in r.citations]
    return {
        "answerable": {
            "questions": len(answerable),
            "answered": len(answered),
            "answer_rate": _share(len(answered), len(answerable)),
            "answered_with_correct_citation": _share(
                sum(bool(r.correct) for r in answerable), len(answerable)
            ),
            "answered_with_correct_citation_quote_rule": _share(
                sum(bool(r.correct_quote_rule) for r in answerable), len(answerable)
            ),
            "support_not_located": sum(r.support_located is False for r in answerable),
        },
        "citations": {
            "verified_citations_of_answered": len(citations),
            "citation_precision": _share(
                sum(c["right_document"] for c in citations), len(citations)
            ),
            "citation_precision_chunk": _share(
                sum(c["correct"] for c in citations), len(citations)
            ),
            "citation_precision_quote": _share(
                sum(c["quote_matches_support"] for c in citations), len(citations)
            ),
            "per_answered_question_mean": (
                round(len(citations) / len(answered), 2) if answered else None
            ),
        },
        "unanswerable": {
            "questions": len(unanswerable),
            "abstained": sum(bool(r.abstained) for r in unanswerable),
            "abstention_rate": _share(
                sum(bool(r.abstained) for r in unanswerable), len(unanswerable)
            ),
        },
        "tasks_not_completed": sum(r.state != COMPLETED for r in records),
    }


def goals(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    values = {
        "answered_with_correct_citation": metrics["answerable"]["answered_with_correct_citation"],
        "citation_precision": metrics["citations"]["citation_precision"],
        "abstention_rate": metrics["unanswerable"]["abstention_rate"],
    }
    return {
        name: {"value": values[name], "min": minimum, "met": (values[name] or 0.0) >= minimum}
        for name, minimum in GOALS.items()
    }


def spread(count: int, total: int) -> list[int]:
    """`count` indices spread evenly over range(total), in order."""
    count = max(0, min(count, total))
    return sorted({(i * total) // count for i in range(count)}) if count else []


# --------------------------------------------------------------------------- the system


@dataclass
class Stack:
    documents: doc_grpc.DocumentServiceStub
    search: search_grpc.SearchServiceStub
    tasks: pb_grpc.TaskServiceStub
    auth: tuple[tuple[str, str], ...]
    model: str


def make_generator(spec: str) -> Generator:
    """`env`: what the tasks service picks from PROTOMESH_GENERATOR_* (the offline
    extractive generator when none is set); `extractive`: that offline default whatever
    the environment says; or `MODULE:ATTR`, a factory called with no arguments."""
    if spec == "env":
        return generator_from_settings(Settings.from_env().generator)
    if spec == "extractive":
        return generator_from_settings(GeneratorSettings())
    module, _, attribute = spec.partition(":")
    if not attribute:
        raise SystemExit(f"--generator: 'env', 'extractive' or MODULE:ATTR, not {spec!r}")
    factory = getattr(importlib.import_module(module), attribute)
    generator: Generator = factory()
    return generator


@contextlib.asynccontextmanager
async def running(owner: str, work: Path, generator: Generator, slots: int) -> AsyncIterator[Stack]:
    """Documents, search (+ indexer), cost and tasks servers and one task worker with
    `slots` slots, all in this event loop."""
    await migrate(owner)
    ensure_dev_key(work)
    document_port, search_port, task_port, cost_port = free_ports(4)
    settings = Settings(
        data_dir=work,
        database_url=owner,
        log_level="warning",
        document_port=document_port,
        search_port=search_port,
        task_port=task_port,
        cost_port=cost_port,
        grace_period_seconds=2.0,
    )
    token = mint_token(
        load_key(work / "dev-signing-key.pem"),
        tenant=TENANT,
        user="bench",
        scopes=ALL_SCOPES,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=7200,
    )
    async with contextlib.AsyncExitStack() as stack:
        for spec in (DOCUMENT_SPEC, search_spec(run_indexer=True), cost_spec(), TASK_SPEC):
            server = ServiceServer(spec, settings)
            await server.start()
            stack.push_async_callback(server.stop, 1.0)
        pool = await create_worker_pool(settings, slots + 4)
        stack.push_async_callback(pool.close)
        worker, clients = build_worker(
            pool, settings, replace(settings.task_worker, count=slots), generator
        )
        stack.push_async_callback(clients.close)
        worker.start()
        stack.push_async_callback(worker.stop)
        channels = {
            port: grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            for port in (document_port, search_port, task_port)
        }
        for channel in channels.values():
            stack.push_async_callback(channel.close)
        yield Stack(
            doc_grpc.DocumentServiceStub(channels[document_port]),
            search_grpc.SearchServiceStub(channels[search_port]),
            pb_grpc.TaskServiceStub(channels[task_port]),
            (("authorization", f"Bearer {token}"),),
            generator.model,
        )


async def ingest(stack: Stack, documents: Sequence[doc_pb.Document]) -> list[str]:
    """Stores the documents (one BatchCreateDocuments stream); their names, in order."""

    async def items() -> AsyncIterator[doc_pb.BatchCreateDocumentsRequest]:
        for i, document in enumerate(documents):
            yield doc_pb.BatchCreateDocumentsRequest(document=document, request_id=f"aq-{i}")

    reply = await stack.documents.BatchCreateDocuments(items(), metadata=stack.auth, timeout=600)
    names = [""] * len(documents)
    for result in reply.results:
        names[result.index] = result.name
    missing = [i for i, name in enumerate(names) if not name]
    if missing:
        raise RuntimeError(f"{len(missing)} documents were not stored (first: #{missing[0]})")
    return names


async def wait_indexed(stack: Stack, count: int, limit_seconds: float) -> float:
    """Seconds until the index holds `count` documents and nothing awaits embedding."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_seconds:
        status = await stack.search.GetIndexStatus(
            search_pb.GetIndexStatusRequest(), metadata=stack.auth
        )
        if status.document_count >= count and status.pending_embedding_count == 0:
            return time.perf_counter() - started
        await asyncio.sleep(1.0)
    raise TimeoutError(f"the index was not complete after {limit_seconds:g}s")


async def support_chunks(stack: Stack, support: str, document: str) -> frozenset[str]:
    """Chunks of `document` containing the support (a keyword search for it there)."""
    request = search_pb.SearchRequest(
        query=support[:1024],
        mode=search_pb.SEARCH_MODE_KEYWORD,  # type: ignore[arg-type]
        page_size=50,
    )
    request.filter.document_names.append(document)
    response = await stack.search.Search(request, metadata=stack.auth, timeout=30)
    return chunks_containing(support, ((r.chunk_id, r.text) for r in response.results))


async def follow(stack: Stack, name: str) -> tuple[pb.Task, float]:
    """The task once terminal and the perf_counter time its end was seen."""
    ended: float | None = None
    call = stack.tasks.WatchTask(pb.WatchTaskRequest(name=name), metadata=stack.auth)
    try:
        async for item in call:
            if item.HasField("task"):
                state = item.task.status.state
            elif item.event.HasField("status_update"):
                state = item.event.status_update.state
            else:
                continue
            if state in TERMINAL:
                ended = time.perf_counter()
                break
    except grpc.aio.AioRpcError:
        pass  # poll below
    finally:
        call.cancel()
    while True:
        task = await stack.tasks.GetTask(pb.GetTaskRequest(name=name), metadata=stack.auth)
        if task.status.state in TERMINAL:
            return task, ended if ended is not None else time.perf_counter()
        await asyncio.sleep(0.05)


async def ask(stack: Stack, question: str, top_k: int) -> tuple[Outcome, float, str]:
    """(outcome, seconds from CreateTask to the end, task name) of one rag.answer task."""
    return await run_task(stack, "rag.answer", {"question": question, "top_k": top_k})


async def run_task(
    stack: Stack,
    kind: str,
    input: dict[str, Any],
    timeout_seconds: float = TASK_TIMEOUT_SECONDS,
) -> tuple[Outcome, float, str]:
    """(outcome, seconds from CreateTask to the end, task name) of one task of type `kind`."""
    task = pb.Task(type=kind)
    task.input.update(input)
    request = pb.CreateTaskRequest(task=task)
    for attempt in range(8):
        started = time.perf_counter()
        try:
            created = await stack.tasks.CreateTask(request, metadata=stack.auth)
            break
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _RETRIED or attempt == 7:
                return Outcome("NOT_CREATED", error=f"{exc.code().name}: {exc.details()}"), 0.0, ""
            await asyncio.sleep(0.5 * 2**attempt)
    try:
        async with asyncio.timeout(timeout_seconds):
            final, ended = await follow(stack, created.name)
    except TimeoutError:
        return Outcome("TIMED_OUT", error="not finished in time"), 0.0, created.name
    return outcome_of(final), ended - started, created.name


@dataclass(frozen=True)
class Question:
    key: str
    question: str
    answerable: bool = False
    support: str = ""
    section_key: str = ""
    support_document: str = ""
    expected: tuple[str, ...] = ()


async def ask_all(
    stack: Stack, questions: Sequence[Question], top_k: int, concurrency: int
) -> tuple[list[tuple[Question, Outcome, float, str]], float]:
    """Every question asked with at most `concurrency` tasks in flight; results in
    question order and the wall time."""
    results: list[tuple[Question, Outcome, float, str] | None] = [None] * len(questions)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(questions)):
        queue.put_nowait(i)

    async def asker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            outcome, seconds, name = await ask(stack, questions[i].question, top_k)
            results[i] = (questions[i], outcome, seconds, name)

    started = time.perf_counter()
    await asyncio.gather(*(asker() for _ in range(max(1, concurrency))))
    wall = time.perf_counter() - started
    return [r for r in results if r is not None], wall


# --------------------------------------------------------------------------- pgdoc-qa


def _section_document(section: Any) -> doc_pb.Document:
    return doc_pb.Document(
        title=section.page_title[:1024],
        content=f"## {section.heading}\n\n{section.body}",
        mime_type="text/markdown",
    )


async def run_pgdoc(owner: str, work: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from bench.corpora import PGDOC_PACKAGE, default_cache, pgdoc_qa, provenance

    cache = args.cache or default_cache()
    corpus, items = pgdoc_qa(
        cache,
        sections=args.sections,
        answerable=args.answerable,
        unanswerable=args.unanswerable,
        seed=args.seed,
    )
    generator = make_generator(args.generator)
    async with running(owner, work, generator, max(1, args.concurrency)) as stack:
        started = time.perf_counter()
        names = await ingest(stack, [_section_document(s) for s in corpus])
        ingest_seconds = time.perf_counter() - started
        document_of = {s.key: name for s, name in zip(corpus, names, strict=True)}
        index_seconds = await wait_indexed(stack, len(names), args.index_timeout)
        questions = [
            Question(
                item.key,
                item.question,
                item.answerable,
                item.support,
                item.section_key,
                document_of.get(item.section_key, ""),
            )
            for item in items
        ]
        located = {
            q.key: await support_chunks(stack, q.support, q.support_document)
            for q in questions
            if q.answerable and q.support_document
        }
        timed = set(spread(args.latency_questions, len(questions)))
        first, first_wall = await ask_all(
            stack, [q for i, q in enumerate(questions) if i in timed], args.top_k, 1
        )
        rest, rest_wall = await ask_all(
            stack,
            [q for i, q in enumerate(questions) if i not in timed],
            args.top_k,
            args.concurrency,
        )
    by_key: dict[str, Record] = {}
    for phase, results in (("latency", first), ("concurrent", rest)):
        for question, outcome, seconds, name in results:
            by_key[question.key] = judge(
                question.key,
                question.question,
                question.answerable,
                question.support,
                question.section_key,
                question.support_document,
                located.get(question.key, frozenset()),
                outcome,
                name,
                seconds * 1000,
                phase,
            )
    records = [by_key[q.key] for q in questions if q.key in by_key]
    path = out / "answers.jsonl"
    with path.open("w") as sink:
        for record in records:
            sink.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
    metrics = summarise(records)

    def seconds_of(results: list[tuple[Question, Outcome, float, str]]) -> list[float]:
        return [s for _, o, s, _ in results if o.state == COMPLETED]

    try:
        package = provenance(cache / PGDOC_PACKAGE)
    except OSError:
        package = {}
    return {
        "benchmark": "answer_quality",
        "corpus": {
            "name": "pgdoc-qa",
            "package": package,
            "seed": args.seed,
            "sections": len(corpus),
            "answerable": sum(q.answerable for q in questions),
            "unanswerable": sum(not q.answerable for q in questions),
        },
        "generator": stack.model,
        "top_k": args.top_k,
        "ingest_seconds": round(ingest_seconds, 1),
        "index_seconds": round(index_seconds, 1),
        "metrics": metrics,
        "latency": {
            "what": "CreateTask → terminal status on WatchTask, one task at a time",
            "questions": len(first),
            "end_to_end": latency_summary(seconds_of(first)),
            "wall_seconds": round(first_wall, 1),
        },
        "concurrent": {
            "questions": len(rest),
            "concurrency": args.concurrency,
            "wall_seconds": round(rest_wall, 1),
            "tasks_per_s": round(len(rest) / rest_wall, 2) if rest_wall else None,
            "end_to_end": latency_summary(seconds_of(rest)),
        },
        "goals": goals(metrics),
        "records": str(path),
    }


# --------------------------------------------------------------------------- docs


def docs_corpus() -> tuple[list[doc_pb.Document], list[str]]:
    """README.md and docs/*.md as `protomesh ingest` prepares them, and their paths
    relative to the repository (the names the expected files use)."""
    from cli.ingest import prepare

    files = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    prepared = [p for p in (prepare(f, {}) for f in files) if not isinstance(p, str)]
    return (
        [p.request.document for p in prepared],
        [str(p.path.relative_to(REPO_ROOT)) for p in prepared],
    )


async def ingest_docs(
    stack: Stack, index_timeout: float
) -> tuple[list[str], dict[str, str], float]:
    """The docs corpus stored and indexed: its files, document name → file, and the
    seconds the index took."""
    documents, relative = docs_corpus()
    names = await ingest(stack, documents)
    index_seconds = await wait_indexed(stack, len(names), index_timeout)
    return relative, dict(zip(names, relative, strict=True)), index_seconds


async def run_docs(owner: str, work: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    generator = make_generator(args.generator)
    async with running(owner, work, generator, max(1, args.concurrency)) as stack:
        relative, file_of, index_seconds = await ingest_docs(stack, args.index_timeout)
        questions = [
            Question(f"docs:{i}", question, expected=expected)
            for i, (question, expected) in enumerate(DOCS_QUESTIONS)
        ]
        results, wall = await ask_all(stack, questions, args.top_k, 1)
    answers = []
    with (out / "answers.jsonl").open("w") as sink:
        for question, outcome, seconds, name in results:
            cited = [file_of.get(c.document, c.document) for c in outcome.citations]
            answer = {
                "question": question.question,
                "answered": outcome.answered,
                "answer": outcome.text,
                "citations": [
                    {"file": file, "title": c.title, "quote": c.quote}
                    for file, c in zip(cited, outcome.citations, strict=True)
                ],
                "expected_files": list(question.expected),
                "cites_an_expected_file": any(f in question.expected for f in cited),
                "state": outcome.state,
                "latency_ms": round(seconds * 1000, 1),
                "task": name,
            }
            answers.append(answer)
            sink.write(json.dumps(answer, ensure_ascii=False) + "\n")
    return {
        "benchmark": "answer_quality",
        "corpus": {"name": "docs", "files": relative},
        "generator": stack.model,
        "top_k": args.top_k,
        "index_seconds": round(index_seconds, 1),
        "answered": sum(a["answered"] for a in answers),
        "cite_an_expected_file": sum(a["cites_an_expected_file"] for a in answers),
        "questions": len(answers),
        "wall_seconds": round(wall, 1),
        "answers": answers,
        "records": str(out / "answers.jsonl"),
    }


# --------------------------------------------------------------------------- research

RESEARCH_DEPTH = 3  # the research workflow plans depth + 1 sub-questions
RESEARCH_TOP_K = 4
RESEARCH_TIMEOUT_SECONDS = 600.0  # the workflow's own timeout
NOT_COVERED = "Not covered by the sources"

# Topics the repository's documentation covers, with the files that document them.
RESEARCH_TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("row-level security", ("README.md", "docs/platform.md", "docs/search.md")),
    ("hybrid search", ("README.md", "docs/search.md")),
    ("task leases and retries", ("docs/observability.md", "docs/scaling.md")),
    (
        "budgets and reservations",
        ("README.md", "docs/observability.md", "docs/platform.md", "docs/scaling.md"),
    ),
    (
        "the transcoding gateway",
        ("README.md", "docs/agents.md", "docs/observability.md", "docs/scaling.md"),
    ),
    ("read-your-writes", ("docs/search.md", "docs/scaling.md")),
)


@dataclass(frozen=True)
class ReportSection:
    heading: str
    body: str

    @property
    def questions(self) -> list[str]:
        """The sub-questions the section answers (the workflow folds sub-questions with
        the same answer into one section headed "Q1 / Q2")."""
        return self.heading.split(" / ")


def report_sections(text: str, headings: Iterable[str]) -> list[ReportSection]:
    """The `## {heading}` sections of a research report whose heading is one of the
    given headings (the planned sub-questions and `NOT_COVERED`) or several of them
    joined by " / ", in the report's order. A `## ` line with any other heading (a
    source's own Markdown quoted in an answer) stays body text."""
    allowed = set(headings)
    starts: list[tuple[int, int, str]] = []
    for match in re.finditer(r"^## (.+?)[ \t]*$", text, re.MULTILINE):
        heading = match.group(1)
        if heading in allowed or all(part in allowed for part in heading.split(" / ")):
            starts.append((match.start(), match.end(), heading))
    return [
        ReportSection(
            heading, text[end : starts[i + 1][0] if i + 1 < len(starts) else None].strip()
        )
        for i, (_, end, heading) in enumerate(starts)
    ]


def listed_as_not_covered(sections: Iterable[ReportSection]) -> list[str]:
    """The sub-questions the "Not covered by the sources" section lists."""
    return [
        line[2:].strip()
        for section in sections
        if section.heading == NOT_COVERED
        for line in section.body.splitlines()
        if line.startswith("- ")
    ]


def _claim_key(claim: str) -> str:
    # In the whole report a sentence without a full stop runs on into the next heading
    # line; within one section it ends at the section's end. Compare up to a heading.
    return normalise(re.split(r"\n#{1,6} ", claim)[0])


def citations_by_section(
    sections: Sequence[ReportSection], citations: Sequence[Citation]
) -> tuple[list[list[Citation]], list[Citation]]:
    """Each verified citation placed in the section that makes it, and the citations no
    section makes. A section's citations are found with the workflow's own citation rule
    (`services.task.citations.extract`) on its body; the verified citations, in report
    order, take them up in order, so a claim repeated in two sections counts in each."""
    from services.task.citations import extract

    pending = [
        Counter((c.source, _claim_key(c.claim)) for c in extract(section.body, [])[0])
        for section in sections
    ]
    placed: list[list[Citation]] = [[] for _ in sections]
    unplaced: list[Citation] = []
    cursor = 0
    for citation in citations:
        key = (citation.source, _claim_key(citation.claim))
        for i in range(cursor, len(sections)):
            if pending[i][key] > 0:
                pending[i][key] -= 1
                placed[i].append(citation)
                cursor = i
                break
        else:
            unplaced.append(citation)
    return placed, unplaced


@dataclass
class ResearchRecord:
    """One research task, its report and how it was judged (a line of research.jsonl)."""

    topic: str
    expected_files: list[str]
    task: str
    state: str
    message: str
    planned: list[str]
    sections: list[dict[str, Any]]  # one per sub-question section of the report
    not_covered: list[str]
    citations: list[dict[str, Any]]  # verified citations with their section and file
    citations_checked: int  # by the verifier, supported or not
    unplaced_citations: int  # verified citations no section makes (0 expected)
    latency_ms: float
    report: str
    error: str = ""


def judge_research(
    topic: str,
    expected_files: Sequence[str],
    planned: Sequence[str],
    outcome: Outcome,
    file_of: dict[str, str],
    task: str = "",
    latency_ms: float = 0.0,
) -> ResearchRecord:
    """Splits the report into its sections and places every verified citation in one."""
    sections = report_sections(outcome.text, [*planned, NOT_COVERED])
    answers = [s for s in sections if s.heading != NOT_COVERED]
    placed, unplaced = citations_by_section(answers, outcome.citations)
    citations = []
    for section, cited in [*zip(answers, placed, strict=True), (None, unplaced)]:
        for c in cited:
            file = file_of.get(c.document, c.document)
            citations.append(
                {
                    "section": section.heading if section else None,
                    "source": c.source,
                    "file": file,
                    "expected_file": file in expected_files,
                    "title": c.title,
                    "claim": c.claim,
                    "quote": c.quote,
                }
            )
    return ResearchRecord(
        topic=topic,
        expected_files=list(expected_files),
        task=task,
        state=outcome.state,
        message=outcome.message,
        planned=list(planned),
        sections=[
            {
                "question": section.heading,
                "questions": section.questions,
                "verified_citations": len(cited),
                "files": sorted({file_of.get(c.document, c.document) for c in cited}),
                "repeats_an_earlier_section": any(
                    normalise(earlier.body) == normalise(section.body) for earlier in answers[:i]
                ),
            }
            for i, (section, cited) in enumerate(zip(answers, placed, strict=True))
        ],
        not_covered=listed_as_not_covered(sections),
        citations=citations,
        citations_checked=outcome.checked,
        unplaced_citations=len(unplaced),
        latency_ms=round(latency_ms, 1),
        report=outcome.text,
        error=outcome.error,
    )


def research_figures(record: ResearchRecord) -> dict[str, Any]:
    """A task's figures: sub-questions planned; sections written (a `## sub-question`
    section in the report); sections answered (written, with >= 1 verified citation);
    sub-questions listed as not covered; written sections whose text repeats an earlier
    section's word for word (one quote answering two sub-questions); verified citations
    (and how many the verifier checked); citation precision (verified citations whose
    file is an expected file);
    whether every written section has >= 1 verified citation and whether every planned
    sub-question is either written or listed as not covered (None without a report:
    the task did not complete); end-to-end latency (CreateTask → terminal status)."""
    answered = sum(s["verified_citations"] > 0 for s in record.sections)
    expected = sum(c["expected_file"] for c in record.citations)
    reported = record.state == COMPLETED  # the two checks below need a report
    headings = [*(q for s in record.sections for q in s["questions"]), *record.not_covered]
    return {
        "state": record.state,
        "sub_questions_planned": len(record.planned),
        "sub_questions_answered": sum(
            len(s["questions"]) for s in record.sections if s["verified_citations"] > 0
        ),
        "sections_written": len(record.sections),
        "sections_answered": answered,
        "sections_not_covered": len(record.not_covered),
        "sections_repeating_another": sum(s["repeats_an_earlier_section"] for s in record.sections),
        "verified_citations": len(record.citations),
        "citations_checked": record.citations_checked,
        "citation_precision": _share(expected, len(record.citations)),
        "every_answered_section_cited": answered == len(record.sections) if reported else None,
        "plan_accounted_for": sorted(headings) == sorted(record.planned) if reported else None,
        "unplaced_citations": record.unplaced_citations,
        "latency_ms": record.latency_ms,
    }


def summarise_research(records: Sequence[ResearchRecord]) -> dict[str, Any]:
    """The figures over all research tasks (precision over all their verified citations)."""
    figures = [research_figures(r) for r in records]

    def total(name: str) -> int:
        return sum(int(f[name]) for f in figures)

    planned, answered = total("sub_questions_planned"), total("sections_answered")
    sub_answered = total("sub_questions_answered")
    verified = total("verified_citations")
    return {
        "topics": len(records),
        "tasks_completed": sum(r.state == COMPLETED for r in records),
        "sub_questions_planned": planned,
        "sections_written": total("sections_written"),
        "sections_answered": answered,
        "sub_questions_answered": sub_answered,
        "sections_not_covered": total("sections_not_covered"),
        "sections_repeating_another": total("sections_repeating_another"),
        "answered_share": _share(sub_answered, planned),
        "verified_citations": verified,
        "citations_checked": total("citations_checked"),
        "citation_precision": _share(
            sum(c["expected_file"] for r in records for c in r.citations), verified
        ),
        # over the tasks that completed (the others have no report)
        "every_answered_section_cited": all(
            f["every_answered_section_cited"] is not False for f in figures
        ),
        "plan_accounted_for": all(f["plan_accounted_for"] is not False for f in figures),
        "unplaced_citations": total("unplaced_citations"),
        "latency": latency_summary([r.latency_ms / 1000 for r in records if r.state == COMPLETED]),
    }


async def run_research(
    owner: str, work: Path, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    from services.task.workflows.research import plan

    generator = make_generator(args.generator)
    async with running(owner, work, generator, max(1, args.concurrency)) as stack:
        relative, file_of, index_seconds = await ingest_docs(stack, args.index_timeout)
        records = []
        started = time.perf_counter()
        for topic, expected in RESEARCH_TOPICS:  # one at a time: honest latency
            outcome, seconds, name = await run_task(
                stack,
                "research",
                {
                    "topic": topic,
                    "depth": RESEARCH_DEPTH,
                    "confirm_plan": False,
                    "top_k": RESEARCH_TOP_K,
                },
                RESEARCH_TIMEOUT_SECONDS,
            )
            planned = plan(topic, RESEARCH_DEPTH)
            records.append(
                judge_research(topic, expected, planned, outcome, file_of, name, seconds * 1000)
            )
        wall = time.perf_counter() - started
    path = out / "research.jsonl"
    with path.open("w") as sink:
        for record in records:
            sink.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
    return {
        "benchmark": "answer_quality",
        "corpus": {"name": "research", "files": relative},
        "generator": stack.model,
        "depth": RESEARCH_DEPTH,
        "top_k": RESEARCH_TOP_K,
        "index_seconds": round(index_seconds, 1),
        "wall_seconds": round(wall, 1),
        "overall": summarise_research(records),
        "topics": {
            r.topic: {"expected_files": r.expected_files, **research_figures(r)} for r in records
        },
        "records": str(path),
    }


# --------------------------------------------------------------------------- main


def results_dir(given: Path | None) -> Path:
    """`given` (created), refused inside the repository; else a new temp dir."""
    if given is None:
        return Path(tempfile.mkdtemp(prefix="answer-quality-"))
    resolved = given.resolve()
    if resolved == REPO_ROOT or REPO_ROOT in resolved.parents:
        raise SystemExit(f"--out {given}: results do not go inside the repository")
    resolved.mkdir(parents=True, exist_ok=True)
    return resolved


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--corpus", choices=("pgdoc-qa", "docs", "research"), default="pgdoc-qa")
    parser.add_argument("--sections", type=int, default=300)
    parser.add_argument("--answerable", type=int, default=150)
    parser.add_argument("--unanswerable", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4, help="tasks in flight")
    parser.add_argument(
        "--latency-questions", type=int, default=30, help="asked one at a time, timed"
    )
    parser.add_argument("--out", type=Path, default=None, help="results dir (default: temp)")
    parser.add_argument(
        "--generator",
        default="env",
        help="env (the tasks service's choice from PROTOMESH_GENERATOR_*), extractive, "
        "or MODULE:ATTR",
    )
    parser.add_argument("--cache", type=Path, default=None, help="bench.corpora's cache")
    parser.add_argument("--index-timeout", type=float, default=900.0)
    args = parser.parse_args()
    out = results_dir(args.out)
    run = {"docs": run_docs, "research": run_research}.get(args.corpus, run_pgdoc)
    with tempfile.TemporaryDirectory(prefix="pma") as tmp, open(os.devnull, "w") as sink:
        configure_logging("bench", "warning", "json", stream=sink)
        postgres = EmbeddedPostgres(Path(tmp) / "pg")
        owner = postgres.start()
        try:
            result = asyncio.run(run(owner, Path(tmp), args, out))
        finally:
            postgres.stop()
    text = json.dumps(result, indent=2, ensure_ascii=False)
    (out / "summary.json").write_text(text + "\n")
    print_goals(result.get("goals", {}))
    print(text)


if __name__ == "__main__":
    main()

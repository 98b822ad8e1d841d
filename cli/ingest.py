"""`protomesh ingest PATH...`: files → DocumentService.BatchCreateDocuments.

Text and Markdown are sent as they are, HTML is reduced to its text (stdlib
`html.parser`); anything else is skipped with a message. Files are read one
at a time while the stream is being sent, so memory stays flat however many
files there are. Each file's request id is derived from its path and content:
re-running over the same files replays instead of duplicating. Each result
carries the change-feed sequence of its document, so the report knows the
sequence the search index must reach (main.py then waits for it, see
waiting.py). The typer wiring lives in main.py; `ingest` takes a channel
`Endpoint` and a bearer token.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from google.rpc import code_pb2
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.document.documents import MAX_BATCH_ITEMS
from services.platform.channels import Endpoint

KINDS = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
}


@dataclass
class IngestReport:
    """What happened to each file."""

    created: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    # Highest change-feed sequence among the documents created or replayed (a
    # replay reports the document's latest change): once the index has applied
    # it, every one of them is searchable. 0 when nothing was written.
    sequence: int = 0


@dataclass(frozen=True)
class Prepared:
    path: Path
    request: pb.BatchCreateDocumentsRequest


# -- files → documents -----------------------------------------------------


class _TextExtractor(HTMLParser):
    """HTML → Markdown-shaped text: headings as `#` lines, list items as `- `
    lines, paragraphs apart by blank lines, so the search chunker sees the same
    structure it sees in Markdown."""

    _SKIP = {"script", "style", "noscript", "template", "head"}
    _PARAGRAPH = {
        "p", "div", "ul", "ol", "table", "section", "article", "header", "footer", "pre",
        "blockquote", "hr", "title", "dl", "main", "nav", "aside", "figure",
    }  # fmt: skip
    _LINE = {"br", "tr", "dt", "dd"}
    _HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        if tag in self._HEADINGS:
            self.parts.append("\n\n" + "#" * self._HEADINGS[tag] + " ")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self._PARAGRAPH:
            self.parts.append("\n\n")
        elif tag in self._LINE:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skipping:
            self._skipping -= 1
        if tag in self._HEADINGS or tag in self._PARAGRAPH:
            self.parts.append("\n\n")
        elif tag in self._LINE:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML document: scripts, styles and markup dropped;
    headings become `#` lines and list items `- ` lines, blocks are separated
    by one blank line, blank space inside a line is collapsed."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return " ".join("".join(parser.title).split()), text


def _markdown_title(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def request_id_for(path: Path, content: bytes) -> str:
    """Stable per (path, content): a re-run replays, an edited file is new."""
    digest = hashlib.sha256(str(path).encode() + b"\0" + content).hexdigest()
    return f"ingest:{digest[:48]}"


def prepare(path: Path, labels: Mapping[str, str]) -> Prepared | str:
    """The item to send for `path`, or why it is skipped."""
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        return f"unsupported type {path.suffix or '(none)'}; ingest reads .txt, .md and .html"
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    title = ""
    mime_type = kind
    if kind == "text/html":
        title, text = html_to_text(text)
        mime_type = "text/plain"
    elif kind == "text/markdown":
        title = _markdown_title(text)
    if not text.strip():
        return "no text"
    document = pb.Document(
        title=(title or path.stem)[:1024],
        content=text,
        mime_type=mime_type,
        labels=dict(labels),
        source_uri=path.as_uri()[:2048],
    )
    if kind != mime_type:
        document.metadata.update({"source_mime_type": kind})
    return Prepared(
        path,
        pb.BatchCreateDocumentsRequest(document=document, request_id=request_id_for(path, raw)),
    )


def expand(paths: Sequence[Path]) -> Iterator[Path]:
    """Files named, and files under directories named (sorted, hidden ones left out)."""
    for given in paths:
        path = given.expanduser().resolve()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if child.is_file() and not any(part.startswith(".") for part in relative):
                    yield child
        else:
            yield path


# -- streaming ---------------------------------------------------------------


async def ingest(
    paths: Sequence[Path],
    target: Endpoint,
    token: str,
    console: Console | None = None,
    labels: Mapping[str, str] | None = None,
    quiet: bool = False,
) -> IngestReport:
    """Streams every supported file under `paths` to DocumentService at `target`,
    shows progress and a summary table (neither when `quiet`), and returns what
    happened per file."""
    console = console or Console()
    files = list(expand(paths))
    report = IngestReport()
    metadata = (("authorization", f"Bearer {token}"),)
    progress = Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
        disable=quiet,
    )
    async with target.open() as channel:
        stub = pb_grpc.DocumentServiceStub(channel)
        with progress:
            task = progress.add_task("", total=len(files))
            remaining = iter(files)
            while True:
                sent: list[Path] = []

                async def items(
                    sent: list[Path] = sent,
                ) -> AsyncIterator[pb.BatchCreateDocumentsRequest]:
                    # At most one stream's worth of items; files are read as gRPC pulls.
                    for path in remaining:
                        progress.update(task, advance=1, description=path.name)
                        try:
                            prepared = prepare(path, labels or {})
                        except OSError as exc:
                            prepared = f"unreadable: {exc.strerror or exc}"
                        if isinstance(prepared, str):
                            report.skipped.append((path, prepared))
                            continue
                        sent.append(path)
                        yield prepared.request
                        if len(sent) == MAX_BATCH_ITEMS:
                            return

                reply = await stub.BatchCreateDocuments(items(), metadata=metadata)
                for result in reply.results:
                    path = sent[result.index]
                    if result.HasField("error") and result.error.code != code_pb2.OK:
                        report.failed.append((path, result.error.message))
                    else:
                        written = report.duplicates if result.replayed else report.created
                        written.append((path, result.name))
                        report.sequence = max(report.sequence, result.sequence)
                if len(sent) < MAX_BATCH_ITEMS:
                    break
    if not quiet:
        console.print(summary_table(report))
    return report


def report_json(report: IngestReport) -> dict[str, object]:
    """The summary as JSON: per outcome, the files with their document name or reason."""

    def named(entries: list[tuple[Path, str]]) -> list[dict[str, str]]:
        return [{"path": str(path), "name": name} for path, name in entries]

    def reasons(entries: list[tuple[Path, str]]) -> list[dict[str, str]]:
        return [{"path": str(path), "reason": reason} for path, reason in entries]

    return {
        "created": named(report.created),
        "duplicates": named(report.duplicates),
        "failed": reasons(report.failed),
        "skipped": reasons(report.skipped),
        "sequence": report.sequence,
    }


def problem(report: IngestReport) -> str:
    """Why the ingest did not do what it was asked ("" when it did): files the
    service refused, or nothing ingestible among the files named."""
    if report.failed:
        path, reason = report.failed[0]
        more = f" (and {len(report.failed) - 1} more)" if len(report.failed) > 1 else ""
        return f"{len(report.failed)} file(s) failed: {path.name}: {reason}{more}"
    if not report.created and not report.duplicates:
        if not report.skipped:
            return "nothing to ingest: no files found"
        path, reason = report.skipped[0]
        more = f" (and {len(report.skipped) - 1} more)" if len(report.skipped) > 1 else ""
        return f"nothing to ingest: {path.name}: {reason}{more}"
    return ""


def summary_table(report: IngestReport) -> Table:
    table = Table(title="ingest summary")
    table.add_column("outcome")
    table.add_column("files", justify="right")
    table.add_column("details")
    table.add_row("created", str(len(report.created)), "")
    table.add_row(
        "duplicates", str(len(report.duplicates)), "already ingested (same path + content)"
    )
    table.add_row("failed", str(len(report.failed)), _reasons(report.failed))
    table.add_row("skipped", str(len(report.skipped)), _reasons(report.skipped))
    return table


def _reasons(items: list[tuple[Path, str]], limit: int = 10) -> str:
    lines = [f"{path.name}: {reason}" for path, reason in items[:limit]]
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more")
    return "\n".join(lines)

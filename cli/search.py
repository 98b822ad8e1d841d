"""`protomesh search "query" [--mode --limit --label k=v]`: SearchService from the
terminal, as a Rich table with highlighted snippets and scores; and
`protomesh search reindex`, which asks for the tenant's index to be rebuilt. The
typer wiring lives in main.py; these functions take an `Endpoint` and a
bearer token."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.output import message_dict, print_json
from protomesh.search.v1 import search_service_pb2 as pb
from protomesh.search.v1 import search_service_pb2_grpc as pb_grpc
from services.platform.channels import Endpoint

MODES = {
    "hybrid": pb.SEARCH_MODE_HYBRID,
    "keyword": pb.SEARCH_MODE_KEYWORD,
    "vector": pb.SEARCH_MODE_VECTOR,
}


def parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    """`k=v` strings → a label filter; raises ValueError on a pair without `=`."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--label wants key=value, got {pair!r}")
        labels[key.strip()] = value.strip()
    return labels


def build_request(
    query: str, mode: str = "hybrid", limit: int = 10, labels: Sequence[str] = ()
) -> pb.SearchRequest:
    if mode not in MODES:
        raise ValueError(f"--mode must be one of {', '.join(MODES)}")
    return pb.SearchRequest(
        query=query,
        mode=MODES[mode],  # type: ignore[arg-type]
        page_size=limit,
        filter=pb.SearchFilter(labels=parse_labels(labels)),
    )


def highlighted(result: pb.SearchResult) -> Text:
    text = Text(result.snippet)
    for span in result.highlights:
        text.stylize("bold yellow", span.start, span.end)
    return text


def render(response: pb.SearchResponse, console: Console) -> Table:
    mode = pb.SearchMode.Name(response.mode).removeprefix("SEARCH_MODE_").lower()
    title = f"{len(response.results)} results · {mode} · index at {response.applied_sequence}"
    table = Table(title=title, show_lines=True)
    table.add_column("#", justify="right")
    # The chunk's full name (it starts with its document's) is never cut.
    table.add_column(
        "document", min_width=max((len(r.chunk_id) for r in response.results), default=8)
    )
    table.add_column("snippet", ratio=1)
    table.add_column("score", justify="right")
    table.add_column("kw", justify="right")
    table.add_column("vec", justify="right")
    for i, result in enumerate(response.results, start=1):
        document = Text(result.title or result.document_name, style="bold")
        document.append(f"\n{result.chunk_id}", style="dim")
        table.add_row(
            str(i),
            document,
            highlighted(result),
            f"{result.score:.4f}",
            f"{result.keyword_rank}" if result.keyword_rank else "-",
            f"{result.vector_rank}" if result.vector_rank else "-",
        )
    console.print(table)
    if response.degraded:
        console.print(f"[yellow]degraded: {response.degraded_reason}[/yellow]")
    return table


async def search(
    target: Endpoint,
    token: str,
    query: str,
    console: Console,
    mode: str = "hybrid",
    limit: int = 10,
    labels: Sequence[str] = (),
    as_json: bool = False,
) -> pb.SearchResponse:
    """Runs one search and prints it (a table, or the SearchResponse as JSON)."""
    request = build_request(query, mode, limit, labels)
    async with target.open() as channel:
        response: pb.SearchResponse = await pb_grpc.SearchServiceStub(channel).Search(
            request, metadata=(("authorization", f"Bearer {token}"),), timeout=30
        )
    if as_json:
        print_json(message_dict(response))
    else:
        render(response, console)
    return response


async def reindex(
    target: Endpoint, token: str, console: Console, quiet: bool = False
) -> pb.ReindexTenantResponse:
    """Calls ReindexTenant (scope search:admin) and prints what it queued (unless `quiet`)."""
    async with target.open() as channel:
        response: pb.ReindexTenantResponse = await pb_grpc.SearchServiceStub(channel).ReindexTenant(
            pb.ReindexTenantRequest(),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=30,
        )
    if quiet:
        return response
    console.print(
        f"queued {response.rebuild_document_count} document(s) for re-chunking and "
        f"{response.queued_chunk_count} chunk(s) for re-embedding; searches keep "
        "answering from the current index meanwhile."
    )
    return response

"""The search CLI's request building and table rendering."""

from __future__ import annotations

import pytest
from rich.console import Console

from cli.search import build_request, parse_labels, render
from protomesh.search.v1 import search_service_pb2 as pb


def test_request_carries_mode_limit_and_labels() -> None:
    request = build_request("q", "keyword", 5, ["team=red", "env = prod"])
    assert request.mode == pb.SEARCH_MODE_KEYWORD
    assert request.page_size == 5
    assert dict(request.filter.labels) == {"team": "red", "env": "prod"}


def test_bad_label_and_mode_are_refused() -> None:
    with pytest.raises(ValueError, match="key=value"):
        parse_labels(["oops"])
    with pytest.raises(ValueError, match="mode"):
        build_request("q", "fuzzy")


def test_table_shows_snippet_scores_and_degraded_note() -> None:
    response = pb.SearchResponse(
        results=[
            pb.SearchResult(
                document_name="documents/a",
                chunk_id="documents/a/chunks/0",
                title="A",
                snippet="the big dog",
                highlights=[pb.TextRange(start=4, end=7)],
                score=0.0164,
                keyword_rank=1,
                vector_rank=2,
            )
        ],
        degraded=True,
        degraded_reason="embedder down",
        mode=pb.SEARCH_MODE_KEYWORD,
    )
    console = Console(record=True, width=120)
    render(response, console)
    out = console.export_text()
    assert "the big dog" in out
    assert "0.0164" in out
    assert "degraded: embedder down" in out

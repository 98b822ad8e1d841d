"""`protomesh ingest` against a real DocumentService: created, duplicates on a
re-run, failures and skips reported per file."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from cli.ingest import ingest
from protomesh.document.v1 import document_service_pb2 as pb
from services.platform.channels import Endpoint
from tests.conftest import Mint


async def test_ingest_streams_files_and_is_idempotent_on_rerun(
    document_server, stub, tenant, mint: Mint, auth, settings, tmp_path: Path
) -> None:
    (tmp_path / "notes.md").write_text("# Notes\n\nsome notes")
    (tmp_path / "page.html").write_text("<p>a page</p>")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "huge.txt").write_text("x" * (settings.max_document_bytes + 1))
    target = Endpoint(f"127.0.0.1:{document_server[0].port}")
    out = io.StringIO()
    console = Console(file=out, width=120)

    first = await ingest([tmp_path], target, mint(tenant), console)
    assert sorted(p.name for p, _ in first.created) == ["notes.md", "page.html"]
    assert [p.name for p, _ in first.failed] == ["huge.txt"]
    assert [p.name for p, _ in first.skipped] == ["image.png"]
    assert "ingest summary" in out.getvalue()

    again = await ingest([tmp_path], target, mint(tenant), console)
    assert sorted(p.name for p, _ in again.duplicates) == ["notes.md", "page.html"]
    assert again.created == []
    listed = await stub.ListDocuments(pb.ListDocumentsRequest(), metadata=auth)
    assert sorted(d.title for d in listed.documents) == ["Notes", "page"]

"""`protomesh ingest` file handling: HTML → text, titles, stable request ids,
skipped types (with hypothesis fuzzing of the HTML reader)."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from cli.ingest import Prepared, expand, html_to_text, prepare, request_id_for

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def test_html_to_text_keeps_text_drops_markup_scripts_and_styles() -> None:
    title, text = html_to_text(
        "<html><head><title> The  Title </title><style>p{}</style></head>"
        "<body><h1>Head</h1><p>One &amp; <b>two</b></p><script>alert(1)</script>"
        "<ul><li>a</li><li>b</li></ul></body></html>"
    )
    assert title == "The Title"
    assert text == "# Head\n\nOne & two\n\n- a\n- b"


@given(st.text(max_size=300))
def test_html_reader_never_fails_and_returns_tidy_text(html: str) -> None:
    title, text = html_to_text(html)
    assert "\n" not in title
    assert all(line == line.strip() for line in text.split("\n"))
    assert "\n\n\n" not in text
    assert text == text.strip()
    if "<" not in html and "&" not in html:  # plain text passes through, tidied
        assert text.split() == html.split()


@given(st.text(), st.binary())
def test_request_ids_are_valid_and_stable(path: str, content: bytes) -> None:
    rid = request_id_for(Path(path or "x"), content)
    assert REQUEST_ID.match(rid)
    assert rid == request_id_for(Path(path or "x"), content)


def test_request_id_changes_with_content_and_path() -> None:
    a = request_id_for(Path("/a.txt"), b"1")
    assert a != request_id_for(Path("/a.txt"), b"2")
    assert a != request_id_for(Path("/b.txt"), b"1")


def test_prepare_reads_text_markdown_and_html_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("plain")
    (tmp_path / "b.md").write_text("# Guide\n\nbody")
    (tmp_path / "c.html").write_text("<title>Page</title><p>hi</p>")
    (tmp_path / "d.png").write_bytes(b"\x89PNG")
    (tmp_path / "e.txt").write_bytes(b"\xff\xfe")
    (tmp_path / "f.md").write_text("   \n")
    out = {p.name: prepare(p, {"src": "test"}) for p in expand([tmp_path])}
    assert isinstance(out["a.txt"], Prepared)
    assert out["a.txt"].request.document.title == "a"
    md = out["b.md"]
    assert isinstance(md, Prepared)
    assert (md.request.document.title, md.request.document.mime_type) == ("Guide", "text/markdown")
    html = out["c.html"]
    assert isinstance(html, Prepared)
    assert html.request.document.content == "hi"
    assert html.request.document.mime_type == "text/plain"
    assert html.request.document.metadata["source_mime_type"] == "text/html"
    assert dict(html.request.document.labels) == {"src": "test"}
    assert "unsupported type .png" in str(out["d.png"])
    assert out["e.txt"] == "not UTF-8 text"
    assert out["f.md"] == "no text"

"""The pure rules of DocumentService: names, order_by, update masks, content
limits and request fingerprints, with hypothesis fuzzing of every parser of
caller input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protomesh.document.v1 import document_service_pb2 as pb
from services.document.documents import (
    DEFAULT_ORDERING,
    UPDATABLE_FIELDS,
    Ordering,
    document_id_of,
    new_document,
    parse_order_by,
    request_fingerprint,
    update_fields,
)
from services.platform.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", DEFAULT_ORDERING),
        ("name", Ordering("name", descending=False)),
        ("update_time desc", Ordering("update_time", descending=True)),
        ("  create_time   asc ", Ordering("create_time", descending=False)),
        ("create_time DESC", Ordering("create_time", descending=True)),
    ],
)
def test_order_by_accepts_the_documented_forms(text: str, expected: Ordering) -> None:
    assert parse_order_by(text) == expected


@pytest.mark.parametrize("text", ["title", "name desc asc", "create_time up", "name,id"])
def test_order_by_rejects_anything_else_on_order_by(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_order_by(text)
    assert err.value.violations[0].field == "order_by"


@given(st.text(max_size=80))
def test_order_by_parser_returns_an_ordering_or_invalid_argument(text: str) -> None:
    try:
        ordering = parse_order_by(text)
    except InvalidArgument:
        return
    assert parse_order_by(ordering.canonical) == ordering


@given(st.text(max_size=100))
def test_name_parser_accepts_only_documents_slash_id(name: str) -> None:
    try:
        document_id = document_id_of(name)
    except InvalidArgument as err:
        fields = [v.field for v in err.violations]
    else:
        fields = []
        assert name == "documents/" + document_id
        assert 1 <= len(document_id) <= 63
    assert fields in ([], ["name"])


@given(st.lists(st.sampled_from([*UPDATABLE_FIELDS, "*", "etag", "name", "x", "labels.a", ""])))
def test_update_mask_yields_updatable_fields_or_invalid_argument(paths: list[str]) -> None:
    try:
        fields = update_fields(paths)
    except InvalidArgument as err:
        violated = {v.field for v in err.violations}
        assert violated == {"update_mask"}
        return
    assert fields
    assert fields <= set(UPDATABLE_FIELDS)
    if "*" in paths:
        assert fields == set(UPDATABLE_FIELDS)


def test_content_limit_counts_utf8_bytes() -> None:
    assert new_document(pb.Document(content="éé"), max_bytes=4).size_bytes == 4
    with pytest.raises(InvalidArgument) as err:
        new_document(pb.Document(content="ééé"), max_bytes=5)
    assert err.value.violations[0].field == "document.content"


def test_fingerprint_ignores_output_only_fields_and_sees_every_input() -> None:
    base = pb.Document(content="c", title="t", labels={"a": "1"})
    same = pb.Document(content="c", title="t", labels={"a": "1"}, etag="e", sequence=5)
    other = pb.Document(content="c", title="t", labels={"a": "2"})

    def fp(doc: pb.Document, document_id: str = "") -> bytes:
        return request_fingerprint(new_document(doc, 1 << 20), document_id)

    assert fp(base) == fp(same)
    assert fp(base) != fp(other)
    assert fp(base) != fp(base, "explicit-id")

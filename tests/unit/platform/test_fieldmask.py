"""The shared AIP-134 update-mask rule (services/platform/fieldmask.py), on the
real Document and Budget messages, and the two services' rules built on it."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.document.v1 import document_service_pb2 as document_pb
from services.cost import budgets
from services.document import documents
from services.platform.errors import InvalidArgument
from services.platform.fieldmask import Update, UpdateRules

DOCUMENT = UpdateRules(document_pb.Document, ("title", "content", "labels", "metadata"))
BUDGET = UpdateRules(cost_pb.Budget, ("display_name", "hard_limit_micros"), ("scope_kind",))


def refused(rules: UpdateRules, paths: list[str], resource: object = None) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        rules.resolve(paths, resource)  # type: ignore[arg-type]
    return caught.value


def test_named_paths_are_the_update() -> None:
    assert DOCUMENT.resolve(["title", "labels"]) == Update(frozenset({"title", "labels"}))


def test_no_mask_means_every_populated_updatable_field() -> None:
    metadata = struct_pb2.Struct()
    metadata.update({"k": 1})
    sent = document_pb.Document(
        name="documents/d", etag="e", title="t", labels={"a": "b"}, metadata=metadata
    )
    # name and etag are populated but cannot change: left out, not refused.
    assert DOCUMENT.resolve([], sent) == Update(frozenset({"title", "labels", "metadata"}))


def test_no_mask_reports_populated_immutable_fields_for_the_service_to_check() -> None:
    sent = cost_pb.Budget(display_name="x", scope_kind=cost_pb.SCOPE_KIND_USER, spent_micros=5)
    assert BUDGET.resolve([], sent) == Update(
        frozenset({"display_name"}), frozenset({"scope_kind"})
    )


def test_no_mask_and_nothing_updatable_populated_is_invalid() -> None:
    error = refused(DOCUMENT, [], document_pb.Document(name="documents/d", etag="e"))
    assert [v.field for v in error.violations] == ["update_mask"]
    assert [v.field for v in refused(DOCUMENT, []).violations] == ["update_mask"]


def test_star_alone_is_every_updatable_field() -> None:
    assert DOCUMENT.resolve(["*"]).fields == {"title", "content", "labels", "metadata"}


@pytest.mark.parametrize("paths", [["*", "title"], ["title", "*"], ["*", "*"]])
def test_star_with_other_paths_is_invalid_for_every_resource(paths: list[str]) -> None:
    for rules in (DOCUMENT, BUDGET):
        error = refused(rules, paths)
        assert [v.field for v in error.violations] == ["update_mask"]
        assert "alone" in error.violations[0].description


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("colour", "unknown field"),
        ("labels.team", "unknown field"),  # inside a map: not a field path
        ("metadata.fields", "inside a field"),
        ("create_time.seconds", "inside a field"),
        ("create_time", "output only"),
        ("etag", "output only"),
        ("", "unknown field"),
    ],
)
def test_bad_paths_each_get_a_violation(path: str, fragment: str) -> None:
    error = refused(DOCUMENT, [path, "title", "nope"])
    assert [v.field for v in error.violations] == ["update_mask", "update_mask"]
    assert fragment in error.violations[0].description
    assert "unknown field 'nope'" in error.violations[1].description


def test_immutable_paths_are_invalid_when_named() -> None:
    error = refused(BUDGET, ["scope_kind"])
    assert "immutable" in error.violations[0].description


def test_rules_naming_a_missing_field_fail_at_definition() -> None:
    with pytest.raises(ValueError, match="colour"):
        UpdateRules(document_pb.Document, ("colour",))


def test_documents_and_budgets_share_the_rule() -> None:
    assert documents.update_fields([], document_pb.Document(title="t")) == {"title"}
    with pytest.raises(InvalidArgument):
        documents.update_fields(["*", "title"])
    spec = budgets.BudgetSpec("a", 1, "", 1, 10, 0, ())
    sent = cost_pb.Budget(display_name="b", scope_kind=cost_pb.SCOPE_KIND_TENANT)
    assert budgets.apply_mask(spec, budgets.BudgetSpec("b", 1, "", 0, 0, 0, ()), [], sent) == (
        budgets.BudgetSpec("b", 1, "", 1, 10, 0, ())
    )
    with pytest.raises(InvalidArgument) as caught:  # an implicit mask may not move the scope
        budgets.apply_mask(
            spec,
            budgets.BudgetSpec("b", 2, "u", 0, 0, 0, ()),
            [],
            cost_pb.Budget(display_name="b", scope_kind=cost_pb.SCOPE_KIND_USER, scope_id="u"),
        )
    assert [v.field for v in caught.value.violations] == ["budget.scope_id", "budget.scope_kind"]

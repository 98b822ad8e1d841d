"""AIP-160 filter parsing and compilation (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protomesh.task.v1 import task_service_pb2
from services.platform.errors import InvalidArgument
from services.platform.filtering import FilterField, compile_filter

FIELDS = {
    "labels": FilterField("d.labels", "map"),
    "mime_type": FilterField("d.mime_type", "string"),
    "create_time": FilterField("d.create_time", "timestamp"),
    "state": FilterField("t.state", "enum", enum=task_service_pb2.TaskState),
}


def test_empty_filter_is_true() -> None:
    assert compile_filter("  ", FIELDS) == ("TRUE", [])


def test_label_equality_uses_parameters_for_key_and_value() -> None:
    sql, params = compile_filter('labels.team = "search"', FIELDS)
    assert sql == "((d.labels ->> $1) = $2)"
    assert params == ["team", "search"]


def test_and_or_not_and_parentheses_compose() -> None:
    sql, params = compile_filter(
        'mime_type = "text/plain" AND (labels.a = x OR NOT labels.b = "y")', FIELDS, first_param=3
    )
    assert (
        sql == "(d.mime_type = $3 AND (((d.labels ->> $4) = $5) OR (NOT ((d.labels ->> $6) = $7))))"
    )
    assert params == ["text/plain", "a", "x", "b", "y"]


def test_juxtaposition_means_and() -> None:
    sql, _ = compile_filter("labels.a = x labels.b = y", FIELDS)
    assert " AND " in sql


def test_timestamps_are_parsed_as_rfc3339() -> None:
    sql, params = compile_filter('create_time >= "2026-01-02T03:04:05Z"', FIELDS)
    assert sql == "d.create_time >= $1"
    assert params == [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)]


def test_enum_names_compile_to_numbers() -> None:
    _, params = compile_filter("state = TASK_STATE_WORKING", FIELDS)
    assert params == [task_service_pb2.TASK_STATE_WORKING]


def test_map_key_presence() -> None:
    assert compile_filter("labels:team", FIELDS) == ("(d.labels ? $1)", ["team"])


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ('labels.team = "x" AND', 22),
        ("(mime_type = a", 15),
        ("color = red", 1),
        ('create_time > "yesterday"', 15),
        ("mime_type < a", 11),
        ("state = NOT_A_STATE", 9),
        ("mime_type = a )", 15),
        ("mime_type ~ a", 11),
    ],
)
def test_bad_filters_are_invalid_argument_with_position(text: str, position: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        compile_filter(text, FIELDS)
    assert caught.value.violations[0].field == "filter"
    assert f"position {position}" in caught.value.message


def test_deep_nesting_is_rejected() -> None:
    with pytest.raises(InvalidArgument):
        compile_filter("(" * 100 + "mime_type = a" + ")" * 100, FIELDS)


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("labels.team=!<>:()\"' -ANDORNOTmime_type xyz09Z\\")),
        max_size=80,
    )
)
def test_any_input_either_compiles_or_is_invalid_argument(text: str) -> None:
    try:
        sql, params = compile_filter(text, FIELDS)
    except InvalidArgument:
        return
    assert sql.count("$") == len(params)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_unicode_never_crashes(text: str) -> None:
    try:
        compile_filter(text, FIELDS)
    except InvalidArgument:
        pass

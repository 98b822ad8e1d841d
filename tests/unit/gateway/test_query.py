"""Query binding: table-driven cases for every field kind, errors, and a fuzz
test asserting any query string ends in a request or a BindError (a 400)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from google.protobuf import descriptor_pool, message_factory
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.jsonmap import BindError, parse_into
from gateway.query import bind_query, parse_query_string
from tests.integration.gateway.harness import Compiled


@pytest.fixture(scope="module")
def pb(compiled: Compiled) -> Any:
    return compiled.pb2


def bind(pb: Any, query: str, bound: tuple[str, ...] = ()) -> Any:
    request = pb.ListThingsRequest()
    parse_into(bind_query(request.DESCRIPTOR, parse_query_string(query), bound), request)
    return request


CASES: list[tuple[str, str, Any]] = [
    ("pageSize=10", "page_size", 10),
    ("page_size=10", "page_size", 10),
    ("filter.kind=KIND_LARGE", "filter.kind", 2),
    ("filter.kind=2", "filter.kind", 2),
    ("filter.minWeight=1.5", "filter.min_weight", 1.5),
    ("filter.inner.tag=t", "filter.inner.tag", "t"),
    ("tags=a&tags=b", "tags", ["a", "b"]),
    ("kinds=KIND_SMALL&kinds=KIND_LARGE", "kinds", [1, 2]),
    ("big=-9007199254740993", "big", -9007199254740993),
    ("ubig=18446744073709551615", "ubig", 18446744073709551615),
    ("flag=true", "flag", True),
    ("flag=0", "flag", False),
    ("ratio=0.25", "ratio", 0.25),
    ("blob=aGk%3D", "blob", b"hi"),
    ("labels[team]=search&labels[x]=", "labels", {"team": "search", "x": ""}),
    ("orderBy=title", "order_by", "title"),
    ("pageToken=a%20b", "page_token", "a b"),
]


@pytest.mark.parametrize(("query", "field", "expected"), CASES)
def test_query_parameter_sets_field(pb: Any, query: str, field: str, expected: Any) -> None:
    value: Any = bind(pb, query)
    for part in field.split("."):
        value = getattr(value, part)
    if isinstance(expected, dict):
        value = dict(value)
    elif isinstance(expected, list):
        value = list(value)
    assert value == expected


def test_well_known_types_bind_from_their_json_text(pb: Any) -> None:
    request = bind(
        pb,
        "createdAfter=2024-01-02T03:04:05Z&maxAge=1.5s&readMask=title,createTime"
        "&includeDeleted=false&wrappedBig=12",
    )
    assert request.created_after.seconds == 1704164645
    assert request.max_age.seconds == 1
    assert request.max_age.nanos == 500_000_000
    assert list(request.read_mask.paths) == ["title", "create_time"]
    assert request.HasField("include_deleted")
    assert not request.include_deleted.value
    assert request.wrapped_big.value == 12


ERRORS = [
    ("nope=1", "unknown query parameter 'nope'"),
    ("filter.nope=1", "unknown query parameter"),
    ("pageSize=x", "expects an integer"),
    ("pageSize=99999999999", "page_size"),
    ("flag=maybe", "expects true or false"),
    ("ratio=abc", "expects a number"),
    ("filter.kind=KIND_HUGE", "expects one of"),
    ("pageSize=1&pageSize=2", "given twice"),
    ("filter=x", "is a message"),
    ("labels=x", "is a map"),
    ("tags[k]=v", "is not a map"),
    ("createdAfter=yesterday", "created_after"),
    ("maxAge=5", "max_age"),
    ("orderBy=a&random=true", "oneof"),
    ("page_size.x=1", "no sub-fields"),
    ("a[b=c", "unknown query parameter"),
    ("pageToken=%FF", "malformed query string"),
]


@pytest.mark.parametrize(("query", "message"), ERRORS)
def test_bad_query_is_a_bind_error(pb: Any, query: str, message: str) -> None:
    with pytest.raises(BindError, match=message):
        bind(pb, query)


def test_query_cannot_set_a_field_bound_by_path_or_body(pb: Any) -> None:
    with pytest.raises(BindError, match="bound by the path or body"):
        bind(pb, "filter.kind=1", bound=("filter",))
    with pytest.raises(BindError, match="bound by the path or body"):
        bind(pb, "pageSize=1", bound=("*",))


def test_too_many_parameters_is_a_bind_error(pb: Any) -> None:
    with pytest.raises(BindError, match="malformed"):
        bind(pb, "&".join(["tags=a"] * 300))


NAMES = st.sampled_from(
    [
        "pageSize",
        "page_token",
        "filter.kind",
        "filter.minWeight",
        "filter.inner.tag",
        "tags",
        "kinds",
        "labels[a]",
        "labels[",
        "big",
        "ubig",
        "flag",
        "ratio",
        "blob",
        "createdAfter",
        "maxAge",
        "readMask",
        "includeDeleted",
        "wrappedBig",
        "orderBy",
        "random",
        "x",
        "",
        ".",
    ]
)
VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "1",
            "-1",
            "true",
            "KIND_SMALL",
            "1.5s",
            "2024-01-01T00:00:00Z",
            "NaN",
            "1e400",
            "99999999999999999999999",
            "a,b",
            "%ZZ",
            "=",
            "&",
        ]
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NAMES, VALUES), max_size=6))
def test_fuzzed_query_binds_or_raises_bind_error(
    compiled: Compiled, pairs: list[tuple[str, str]]
) -> None:
    desc = descriptor_pool.Default().FindMessageTypeByName("gatewaytest.v1.ListThingsRequest")
    request = message_factory.GetMessageClass(desc)()
    try:
        parse_into(bind_query(desc, parse_query_string(urlencode(pairs)), ()), request)
    except BindError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_fuzzed_raw_query_strings_never_escape_as_other_errors(
    compiled: Compiled, query: str
) -> None:
    desc = descriptor_pool.Default().FindMessageTypeByName("gatewaytest.v1.EchoRequest")
    request = message_factory.GetMessageClass(desc)()
    try:
        parse_into(bind_query(desc, parse_query_string(query), ()), request)
    except BindError:
        pass


def test_an_enum_given_as_non_ascii_digits_is_a_bind_error_not_a_crash(pb: Any) -> None:
    with pytest.raises(BindError):
        bind(pb, "filter.kind=%C2%B2")  # "²": str.isdigit() says yes, int() says no

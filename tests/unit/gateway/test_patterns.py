"""Path templates: parsing per google/api/http.proto, matching, decoding; fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.patterns import TemplateError, parse_template

MATCHES = [
    ("/v1/things", "/v1/things", {}),
    ("/v1/{name=things/*}", "/v1/things/abc", {"name": "things/abc"}),
    ("/v1/{name=things/*}", "/v1/things/a%20b", {"name": "things/a b"}),
    ("/v1/{name=things/*}", "/v1/things/a%2Fb", {"name": "things/a%2Fb"}),
    ("/v1/{id}", "/v1/a%2Fb", {"id": "a/b"}),
    ("/v1/{id=*}", "/v1/%E2%9C%93", {"id": "\u2713"}),
    ("/v1/{name=shelves/*/things/*}", "/v1/shelves/s/things/t", {"name": "shelves/s/things/t"}),
    ("/v1/{a.b.c}/x", "/v1/7/x", {"a.b.c": "7"}),
    ("/v1/{name=things/*}:archive", "/v1/things/t:archive", {"name": "things/t"}),
    ("/v1/things:watch", "/v1/things:watch", {}),
    ("/v1/files/{path=**}", "/v1/files/a/b%2Fc/d", {"path": "a/b%2Fc/d"}),
    ("/v1/files/{path=**}", "/v1/files", {"path": ""}),
    ("/v1/{id}/deep/{rest=**}", "/v1/x/deep/y/z", {"id": "x", "rest": "y/z"}),
    ("/v1/anon/*/x", "/v1/anon/anything/x", {}),
    ("/v1/**", "/v1/a/b/c", {}),
]

MISMATCHES = [
    ("/v1/things", "/v1/things/"),
    ("/v1/things", "/v2/things"),
    ("/v1/{name=things/*}", "/v1/things"),
    ("/v1/{name=things/*}", "/v1/things/a/b"),
    ("/v1/{name=things/*}", "/v1/things/"),
    ("/v1/{name=things/*}:archive", "/v1/things/t"),
    ("/v1/{name=things/*}:archive", "/v1/things/t:other"),
    ("/v1/things:watch", "/v1/things"),
    ("/v1/{id}", "/v1/%FF"),
    ("/v1/{id}", "v1/x"),
]

INVALID = [
    "v1/things",
    "/v1/{name",
    "/v1/{name=things/*",
    "/v1/**/x",
    "/v1/{a}/{a}",
    "/v1/{a={b}}",
    "/v1/:verb",
    "/v1/x:",
    "/v1/{1a}",
    "/v1/{a.}",
    "/v1//x",
    "/v1/x y",
]


@pytest.mark.parametrize(("template", "path", "expected"), MATCHES)
def test_template_matches_path_and_decodes_variables(
    template: str, path: str, expected: dict[str, str]
) -> None:
    assert parse_template(template).match(path) == expected


@pytest.mark.parametrize(("template", "path"), MISMATCHES)
def test_template_does_not_match_other_paths(template: str, path: str) -> None:
    assert parse_template(template).match(path) is None


@pytest.mark.parametrize("template", INVALID)
def test_invalid_template_is_rejected_with_reason(template: str) -> None:
    with pytest.raises(TemplateError, match="invalid path template"):
        parse_template(template)


def test_variable_defaults_to_one_segment_and_verb_is_kept() -> None:
    template = parse_template("/v1/{name}:cancel")
    assert template.verb == "cancel"
    assert [v.dotted for v in template.variables] == ["name"]
    assert template.shape() == "/v1/*:cancel"


def test_shape_erases_variable_names() -> None:
    assert parse_template("/v1/{a=x/*}").shape() == parse_template("/v1/x/{b}").shape()


TEMPLATE_ALPHABET = st.sampled_from([*list("/{}=*.:abc_-%2F"), "**", "v1", "{name=", "}"])
PATH_ALPHABET = st.sampled_from([*list("/:%.-_~abcxyz019"), "%2F", "%FF", "things", "v1", "**"])


@settings(max_examples=200, deadline=None)
@given(st.lists(TEMPLATE_ALPHABET, max_size=20).map("".join))
def test_fuzzed_templates_parse_or_fail_cleanly(source: str) -> None:
    try:
        template = parse_template(source)
    except TemplateError:
        return
    assert template.source == source
    template.match(source)


KNOWN = [parse_template(t) for t, _, _ in MATCHES]


@settings(max_examples=200, deadline=None)
@given(st.lists(PATH_ALPHABET, max_size=24).map(lambda parts: "/" + "".join(parts)))
def test_fuzzed_paths_never_break_the_matcher(path: str) -> None:
    for template in KNOWN:
        values = template.match(path)
        assert values is None or all(isinstance(v, str) for v in values.values())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_never_breaks_parser_or_matcher(text: str) -> None:
    try:
        parse_template(text)
    except TemplateError:
        pass
    for template in KNOWN:
        template.match(text)


# --- the compiled expression answers as the segment-by-segment matcher does ---

TEMPLATES = [
    *(t for t, _, _ in MATCHES),
    *(t for t, _ in MISMATCHES),
    "/**",
    "/{all=**}",
    "/v1/{name=shelves/**}",
    "/v1/{a}/{b=x/*/y}/{c=**}",
    "/v1/{name=things/*}/**:verb",
    "/v1/a.b~c/{x}",
]
SIMPLE_PATH = st.lists(
    st.sampled_from([*list("/:.-_~abcxyz019 \n"), "things", "v1", "shelves", "deep", "verb"]),
    max_size=16,
).map(lambda parts: "/" + "".join(parts))


def test_every_known_template_compiles() -> None:
    for source in TEMPLATES:
        assert parse_template(source).compiled is not None


def test_a_literal_holding_a_slash_is_matched_segment_by_segment() -> None:
    template = parse_template("/v1/a%2Fb/{x}")
    assert template.compiled is None
    assert template.match("/v1/a%2Fb/1") == {"x": "1"}
    assert template.match("/v1/a/b/1") is None


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(TEMPLATES), SIMPLE_PATH)
def test_compiled_template_matches_like_segments(source: str, path: str) -> None:
    template = parse_template(source)
    assert template.match(path) == template.match_segments(path)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEMPLATE_ALPHABET, max_size=20).map("".join), SIMPLE_PATH)
def test_fuzzed_templates_match_like_segments(source: str, path: str) -> None:
    try:
        template = parse_template(source)
    except TemplateError:
        return
    for candidate in (path, source, source.replace("{", "").replace("}", "")):
        if "%" not in candidate:
            assert template.match(candidate) == template.match_segments(candidate)


@pytest.mark.parametrize(
    ("template", "path", "value"),
    [
        # The id, or the whole name a response returned as one encoded segment.
        ("/v1/{name=documents/*}", "/v1/documents/abc", "documents/abc"),
        ("/v1/{name=documents/*}", "/v1/documents/documents%2Fabc", "documents/abc"),
        ("/v1/{name=documents/*}", "/v1/documents/documents%2fa%20b", "documents/a b"),
        ("/v1/{name=tasks/*}:cancel", "/v1/tasks/tasks%2Fabc:cancel", "tasks/abc"),
        (
            "/v1/{name=tenants/*/tier}",
            "/v1/tenants/tenants%2Facme%2Ftier/tier",
            "tenants/acme/tier",
        ),
        # Another collection's name, or a name that does not fit, names nothing else.
        ("/v1/{name=documents/*}", "/v1/documents/tasks%2Fabc", "documents/tasks%2Fabc"),
        ("/v1/{name=documents/*}", "/v1/documents/documents%2F", "documents/documents%2F"),
        (
            "/v1/{name=documents/*}",
            "/v1/documents/documents%2Fa%2Fb",
            "documents/documents%2Fa%2Fb",
        ),
        (
            "/v1/{name=tenants/*/tier}",
            "/v1/tenants/tenants%2Facme/tier",
            "tenants/tenants%2Facme/tier",
        ),
        # Two `*` in one variable: segments only.
        (
            "/v1/{name=shelves/*/things/*}",
            "/v1/shelves/shelves%2Fa%2Fthings%2Fb/things/c",
            "shelves/shelves%2Fa%2Fthings%2Fb/things/c",
        ),
    ],
)
def test_a_name_variable_takes_the_id_or_the_whole_name(
    template: str, path: str, value: str
) -> None:
    assert parse_template(template).match(path) == {"name": value}

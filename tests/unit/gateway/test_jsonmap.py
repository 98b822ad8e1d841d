"""The proto3 JSON mapping helpers: field lookup, text → JSON for path and query
values (every scalar kind, enums, wrappers and well-known types), JSON document
parsing limits, message ↔ JSON, and a property test that any text either converts
or is a BindError (a 400), never another exception (a 500)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.jsonmap import (
    MAX_JSON_DEPTH,
    OPAQUE_WKTS,
    SCALAR_WKTS,
    WRAPPERS,
    BindError,
    dumps,
    enum_type,
    find_field,
    is_map,
    is_repeated,
    loads,
    message_name,
    message_type,
    parse_into,
    resolve_path,
    text_to_json,
    to_json,
)
from protomesh.document.v1 import document_service_pb2
from tests.integration.gateway.harness import Compiled


@pytest.fixture(scope="module")
def pb(compiled: Compiled) -> Any:
    return compiled.pb2


@pytest.fixture(scope="module")
def echo(pb: Any) -> Descriptor:
    desc: Descriptor = pb.EchoRequest.DESCRIPTOR
    return desc


@pytest.fixture(scope="module")
def listing(pb: Any) -> Descriptor:
    desc: Descriptor = pb.ListThingsRequest.DESCRIPTOR
    return desc


def convert(desc: Descriptor, name: str, text: str) -> Any:
    return text_to_json(desc.fields_by_name[name], text)


# --- field lookup -------------------------------------------------------------


def test_find_field_by_proto_name(echo: Descriptor) -> None:
    field = find_field(echo, "maybe_text")
    assert field is not None
    assert field.name == "maybe_text"


def test_find_field_by_json_name(echo: Descriptor) -> None:
    field = find_field(echo, "maybeText")
    assert field is not None
    assert field.name == "maybe_text"


@pytest.mark.parametrize("name", ["nope", "", "MaybeText", "maybetext", "maybe-text"])
def test_find_field_returns_none_for_unknown_names(echo: Descriptor, name: str) -> None:
    assert find_field(echo, name) is None


@pytest.mark.parametrize(
    ("name", "repeated", "is_a_map"),
    [
        ("tags", True, False),
        ("kinds", True, False),
        ("labels", True, True),
        ("page_size", False, False),
        ("filter", False, False),
        ("created_after", False, False),
    ],
)
def test_repeated_and_map_fields_are_recognised(
    listing: Descriptor, name: str, repeated: bool, is_a_map: bool
) -> None:
    field = listing.fields_by_name[name]
    assert is_repeated(field) is repeated
    assert is_map(field) is is_a_map


def test_message_name_is_the_full_type_name_of_message_fields(listing: Descriptor) -> None:
    assert message_name(listing.fields_by_name["created_after"]) == "google.protobuf.Timestamp"
    assert message_name(listing.fields_by_name["filter"]) == "gatewaytest.v1.Filter"


def test_message_name_is_empty_for_non_message_fields(listing: Descriptor) -> None:
    assert message_name(listing.fields_by_name["page_size"]) == ""
    assert message_name(listing.fields_by_name["tags"]) == ""


def test_message_type_is_the_field_descriptor_of_message_fields(listing: Descriptor) -> None:
    assert message_type(listing.fields_by_name["filter"]).full_name == "gatewaytest.v1.Filter"


def test_message_type_of_a_scalar_field_is_a_type_error(listing: Descriptor) -> None:
    with pytest.raises(TypeError, match="not a message field"):
        message_type(listing.fields_by_name["page_size"])


def test_enum_type_of_an_enum_field_is_its_enum(listing: Descriptor) -> None:
    assert enum_type(listing.fields_by_name["kinds"]).full_name == "gatewaytest.v1.Kind"


def test_enum_type_of_a_non_enum_field_is_a_type_error(listing: Descriptor) -> None:
    with pytest.raises(TypeError, match="not an enum field"):
        enum_type(listing.fields_by_name["filter"])


def test_message_type_of_project_generated_messages() -> None:
    desc = document_service_pb2.UpdateDocumentRequest.DESCRIPTOR
    assert message_type(desc.fields_by_name["document"]).full_name == (
        "protomesh.document.v1.Document"
    )
    assert message_name(desc.fields_by_name["update_mask"]) == "google.protobuf.FieldMask"


# --- well-known type sets -----------------------------------------------------


def test_wrappers_are_scalar_well_known_types() -> None:
    assert WRAPPERS < SCALAR_WKTS
    assert all(name.endswith("Value") for name in WRAPPERS)
    assert "google.protobuf.Timestamp" not in WRAPPERS
    assert len(WRAPPERS) == 9


@pytest.mark.parametrize(
    "name",
    [
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Any",
        "google.protobuf.Empty",
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.Int64Value",
    ],
)
def test_well_known_types_with_non_object_json_are_opaque(name: str) -> None:
    assert name in OPAQUE_WKTS


def test_plain_messages_are_not_opaque(echo: Descriptor) -> None:
    assert message_name(echo.fields_by_name["nested"]) not in OPAQUE_WKTS
    assert SCALAR_WKTS <= OPAQUE_WKTS


# --- resolve_path -------------------------------------------------------------


def test_resolve_path_walks_singular_messages(listing: Descriptor) -> None:
    fields = resolve_path(listing, "filter.inner.tag")
    assert [f.name for f in fields] == ["filter", "inner", "tag"]


def test_resolve_path_accepts_json_names(listing: Descriptor) -> None:
    assert [f.name for f in resolve_path(listing, "filter.minWeight")] == ["filter", "min_weight"]


def test_resolve_path_rejects_unknown_fields(listing: Descriptor) -> None:
    with pytest.raises(KeyError, match="has no field 'nope'"):
        resolve_path(listing, "filter.nope")


def test_resolve_path_does_not_enter_scalars(listing: Descriptor) -> None:
    with pytest.raises(KeyError, match="'page_size' is not a message"):
        resolve_path(listing, "page_size.x")


def test_resolve_path_does_not_enter_repeated_fields(echo: Descriptor) -> None:
    with pytest.raises(KeyError, match="is not a message"):
        resolve_path(echo, "items.label")


# --- text_to_json: scalars ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("i32", "-2147483648"),
        ("i64", "9007199254740993"),
        ("i64", "-9223372036854775808"),
        ("u32", "4294967295"),
        ("u64", "18446744073709551615"),
        ("s64", "-5"),
        ("f64", "7"),
    ],
)
def test_integer_values_are_passed_as_strings(echo: Descriptor, name: str, text: str) -> None:
    assert convert(echo, name, text) == text


def test_int64_values_are_passed_as_strings_and_keep_full_precision(
    pb: Any, echo: Descriptor
) -> None:
    value = convert(echo, "i64", "9007199254740993")
    assert value == "9007199254740993"
    request = pb.EchoRequest()
    parse_into({"i64": value}, request)
    assert request.i64 == 2**53 + 1


@pytest.mark.parametrize("text", ["x", "", "1.5", "1e3", "0x10", "one", "²", "--1"])
def test_integer_field_rejects_non_integers(echo: Descriptor, text: str) -> None:
    with pytest.raises(BindError, match="expects an integer") as caught:
        convert(echo, "i32", text)
    assert caught.value.field == "i32"


def test_integer_out_of_range_is_rejected_when_parsed(pb: Any, echo: Descriptor) -> None:
    value = convert(echo, "i32", "99999999999")
    with pytest.raises(BindError):
        parse_into({"i32": value}, pb.EchoRequest())


def test_integer_with_too_many_digits_is_a_bind_error(echo: Descriptor) -> None:
    with pytest.raises(BindError, match="expects an integer"):
        convert(echo, "i64", "9" * 5000)


@pytest.mark.parametrize("text", ["1.5", "-0.25", "1e10", "3", "0"])
def test_float_values_are_passed_as_strings(echo: Descriptor, text: str) -> None:
    assert convert(echo, "dbl", text) == text
    assert convert(echo, "flt", text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("NaN", math.nan), ("Infinity", math.inf), ("-Infinity", -math.inf)],
)
def test_float_nan_and_infinity_are_passed_as_their_json_names(
    pb: Any, echo: Descriptor, text: str, expected: float
) -> None:
    assert convert(echo, "dbl", text) == text
    assert convert(echo, "flt", text) == text
    request = pb.EchoRequest()
    parse_into({"dbl": convert(echo, "dbl", text)}, request)
    if math.isnan(expected):
        assert math.isnan(request.dbl)
    else:
        assert request.dbl == expected


@pytest.mark.parametrize("text", ["abc", "", "1.5.5", "1,5", "0x1p3"])
def test_float_field_rejects_non_numbers(echo: Descriptor, text: str) -> None:
    with pytest.raises(BindError, match="expects a number") as caught:
        convert(echo, "dbl", text)
    assert caught.value.field == "dbl"


@pytest.mark.parametrize("text", ["true", "True", "TRUE", "1"])
def test_true_bool_spellings(echo: Descriptor, text: str) -> None:
    assert convert(echo, "flag", text) is True


@pytest.mark.parametrize("text", ["false", "False", "FALSE", "0"])
def test_false_bool_spellings(echo: Descriptor, text: str) -> None:
    assert convert(echo, "flag", text) is False


@pytest.mark.parametrize("text", ["yes", "no", "", "2", "t", "on", " true"])
def test_bool_field_rejects_other_text(echo: Descriptor, text: str) -> None:
    with pytest.raises(BindError, match="expects true or false") as caught:
        convert(echo, "flag", text)
    assert caught.value.field == "flag"


@pytest.mark.parametrize("text", ["", "plain", "caf\u00e9", "a b/c", "123"])
def test_string_values_pass_through_unchanged(echo: Descriptor, text: str) -> None:
    assert convert(echo, "id", text) == text


def test_bytes_values_are_passed_as_base64_text(pb: Any, echo: Descriptor) -> None:
    value = convert(echo, "data", "aGk=")
    assert value == "aGk="
    request = pb.EchoRequest()
    parse_into({"data": value}, request)
    assert request.data == b"hi"


def test_url_safe_base64_bytes_are_accepted(pb: Any, echo: Descriptor) -> None:
    request = pb.EchoRequest()
    parse_into({"data": convert(echo, "data", "-_8=")}, request)
    assert request.data == b"\xfb\xff"


# --- text_to_json: enums ------------------------------------------------------


def test_enum_by_name_is_passed_as_the_name(echo: Descriptor) -> None:
    assert convert(echo, "kind", "KIND_LARGE") == "KIND_LARGE"


@pytest.mark.parametrize(("text", "number"), [("2", 2), ("0", 0), ("-1", -1), ("7", 7)])
def test_enum_by_number_is_passed_as_an_int(echo: Descriptor, text: str, number: int) -> None:
    assert convert(echo, "kind", text) == number


def test_repeated_enum_elements_convert_like_single_enums(echo: Descriptor) -> None:
    assert convert(echo, "kinds", "KIND_SMALL") == "KIND_SMALL"
    assert convert(echo, "kinds", "1") == 1


@pytest.mark.parametrize("text", ["KIND_HUGE", "kind_large", "", " KIND_LARGE", "Kind.KIND_LARGE"])
def test_unknown_enum_name_is_a_bind_error_listing_the_names(echo: Descriptor, text: str) -> None:
    with pytest.raises(BindError, match="KIND_UNSPECIFIED, KIND_SMALL, KIND_LARGE") as caught:
        convert(echo, "kind", text)
    assert caught.value.field == "kind"


@pytest.mark.parametrize(
    "text",
    [
        "\u00b2",  # superscript two: str.isdigit() is true, int() refuses
        "\u0662",  # Arabic-Indic two: int() would accept it
        "\uff12",  # fullwidth two
        "+1",
        "1.0",
        "0x1",
    ],
)
def test_enum_given_as_non_ascii_or_non_decimal_digits_is_a_bind_error(
    echo: Descriptor, text: str
) -> None:
    with pytest.raises(BindError, match="expects one of"):
        convert(echo, "kind", text)


def test_enum_number_with_too_many_digits_is_a_bind_error(echo: Descriptor) -> None:
    # int() refuses more than 4300 digits with a plain ValueError (a 500 if it escapes).
    with pytest.raises(BindError) as caught:
        convert(echo, "kind", "9" * 5000)
    assert caught.value.field == "kind"


def test_out_of_range_enum_number_is_rejected_when_parsed(pb: Any, echo: Descriptor) -> None:
    with pytest.raises(BindError):
        parse_into({"kind": convert(echo, "kind", "99999999999")}, pb.EchoRequest())


# --- text_to_json: messages and well-known types -------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("maybe_text", "x", "x"),
        ("maybe_number", "1.5", "1.5"),
        ("maybe_number", "NaN", "NaN"),
    ],
)
def test_wrappers_convert_like_their_value_field(
    echo: Descriptor, name: str, text: str, expected: Any
) -> None:
    assert convert(echo, name, text) == expected


def test_bool_wrapper_converts_to_a_bool(listing: Descriptor) -> None:
    assert convert(listing, "include_deleted", "false") is False


def test_int64_wrapper_is_passed_as_a_string(listing: Descriptor) -> None:
    assert convert(listing, "wrapped_big", "9007199254740993") == "9007199254740993"


def test_wrapper_rejects_text_its_value_field_rejects(echo: Descriptor) -> None:
    with pytest.raises(BindError, match="expects a number"):
        convert(echo, "maybe_number", "abc")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("at", "2024-01-02T03:04:05Z"),
        ("at", "not-a-time"),
        ("wait", "1.5s"),
        ("mask", "title,createTime"),
    ],
)
def test_scalar_well_known_types_pass_their_text_through(
    echo: Descriptor, name: str, text: str
) -> None:
    assert convert(echo, name, text) == text


def test_well_known_type_text_is_checked_when_parsed(pb: Any, echo: Descriptor) -> None:
    request = pb.EchoRequest()
    parse_into({"at": convert(echo, "at", "2024-01-02T03:04:05Z")}, request)
    assert request.at.seconds == 1704164645
    with pytest.raises(BindError):
        parse_into({"at": convert(echo, "at", "not-a-time")}, pb.EchoRequest())


@pytest.mark.parametrize("name", ["nested", "doc", "any_value", "counts", "items"])
def test_message_fields_cannot_be_set_from_text(echo: Descriptor, name: str) -> None:
    with pytest.raises(BindError, match="is a message") as caught:
        convert(echo, name, "x")
    assert caught.value.field == name


# --- text_to_json: properties -------------------------------------------------

TRICKY_TEXT = st.sampled_from(
    [
        "",
        "0",
        "-0",
        "NaN",
        "nan",
        "inf",
        "-Infinity",
        "1e400",
        "1_000",
        " 1",
        "\u00b2",
        "\u0662",
        "\uff12",
        "\x00",
        "KIND_LARGE",
        "true",
        "aGk=",
        "99999999999999999999999",
        "2024-01-02T03:04:05Z",
        "1.5s",
    ]
)
LONG_DIGITS = st.builds(
    lambda sign, count: sign + "9" * count,
    st.sampled_from(["", "-"]),
    st.integers(min_value=4290, max_value=4400),
)
ANY_TEXT = st.one_of(st.text(), TRICKY_TEXT, LONG_DIGITS)


def _all_fields(compiled: Compiled) -> list[FieldDescriptor]:
    pb = compiled.pb2
    fields: list[FieldDescriptor] = []
    for message in (pb.EchoRequest, pb.ListThingsRequest, pb.Thing):
        fields.extend(message.DESCRIPTOR.fields)
    return fields


@settings(max_examples=300, deadline=None)
@given(data=st.data(), text=ANY_TEXT)
def test_any_text_converts_or_raises_bind_error(
    compiled: Compiled, data: st.DataObject, text: str
) -> None:
    field = data.draw(st.sampled_from(_all_fields(compiled)))
    try:
        text_to_json(field, text)
    except BindError:
        pass


@settings(max_examples=200, deadline=None)
@given(data=st.data(), text=ANY_TEXT)
def test_converted_text_parses_or_raises_bind_error(
    compiled: Compiled, data: st.DataObject, text: str
) -> None:
    pb = compiled.pb2
    field = data.draw(st.sampled_from(list(pb.EchoRequest.DESCRIPTOR.fields)))
    try:
        value = text_to_json(field, text)
        parse_into({field.name: [value] if is_repeated(field) else value}, pb.EchoRequest())
    except BindError:
        pass


@settings(max_examples=100, deadline=None)
@given(number=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_int64_round_trips_exactly(compiled: Compiled, number: int) -> None:
    pb = compiled.pb2
    field = pb.EchoRequest.DESCRIPTOR.fields_by_name["i64"]
    request = pb.EchoRequest()
    parse_into({"i64": text_to_json(field, str(number))}, request)
    assert request.i64 == number
    assert to_json(request, emit_unpopulated=True)["i64"] == str(number)


@settings(max_examples=100, deadline=None)
@given(number=st.floats(allow_nan=False))
def test_any_double_round_trips_through_its_repr(compiled: Compiled, number: float) -> None:
    pb = compiled.pb2
    field = pb.EchoRequest.DESCRIPTOR.fields_by_name["dbl"]
    request = pb.EchoRequest()
    parse_into({"dbl": text_to_json(field, repr(number))}, request)
    assert request.dbl == number
    assert math.copysign(1.0, request.dbl) == math.copysign(1.0, number)


# --- loads --------------------------------------------------------------------


def test_loads_parses_json_documents() -> None:
    assert loads(b'{"a": [1, "x", null, true, 1.5]}') == {"a": [1, "x", None, True, 1.5]}


def test_loads_accepts_utf8_text() -> None:
    assert loads('{"t": "caf\u00e9 \u2603"}'.encode()) == {"t": "caf\u00e9 \u2603"}


@pytest.mark.parametrize("raw", [b"\xff", b'{"a": "\xc3"}', b'"\xed\xa0\x80"', b"\xfe\xff{}"])
def test_loads_rejects_bad_utf8(raw: bytes) -> None:
    with pytest.raises(BindError, match="not valid UTF-8"):
        loads(raw)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'a': 1}", b"[1,]", b'{"a" 1}', b"undefined", b"\xef\xbb\xbf{}", b"1 2"],
)
def test_loads_rejects_bad_json(raw: bytes) -> None:
    with pytest.raises(BindError, match="not valid JSON"):
        loads(raw)


@pytest.mark.parametrize(
    "raw", [b"NaN", b"Infinity", b"-Infinity", b'{"x": NaN}', b"[1, Infinity]"]
)
def test_loads_rejects_nan_and_infinity_constants(raw: bytes) -> None:
    with pytest.raises(BindError, match="is not JSON"):
        loads(raw)


def test_loads_rejects_numbers_too_long_to_convert() -> None:
    with pytest.raises(BindError, match="not valid JSON"):
        loads(b"9" * 5000)


def test_loads_accepts_nesting_up_to_the_limit() -> None:
    depth = MAX_JSON_DEPTH
    value = loads(b"[" * depth + b"]" * depth)
    for _ in range(depth - 1):
        value = value[0]
    assert value == []


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        b'{"a":' * (MAX_JSON_DEPTH + 1) + b"{}" + b"}" * (MAX_JSON_DEPTH + 1),
        b'[{"a":' * 40 + b"1" + b"}]" * 40,
    ],
)
def test_loads_rejects_nesting_beyond_the_limit(raw: bytes) -> None:
    with pytest.raises(BindError, match=f"nests deeper than {MAX_JSON_DEPTH} levels"):
        loads(raw)


def test_loads_rejects_nesting_deeper_than_the_parser_can_recurse() -> None:
    with pytest.raises(BindError):
        loads(b"[" * 100_000 + b"]" * 100_000)


def test_scalars_inside_the_deepest_container_do_not_count_as_a_level() -> None:
    depth = MAX_JSON_DEPTH
    assert loads(b"[" * depth + b'1, "x"' + b"]" * depth) is not None


# --- parse_into, to_json, dumps ------------------------------------------------


def test_parse_into_fills_the_message(pb: Any) -> None:
    request = pb.EchoRequest()
    parse_into({"id": "a", "i64": "5", "kind": "KIND_SMALL", "words": ["x"]}, request)
    assert (request.id, request.i64, request.kind, list(request.words)) == ("a", 5, 1, ["x"])


def test_parse_into_rejects_unknown_fields(pb: Any) -> None:
    with pytest.raises(BindError, match="nope"):
        parse_into({"nope": 1}, pb.EchoRequest())


@pytest.mark.parametrize(
    "data",
    [
        {"i32": [1]},
        {"i32": True},
        {"flag": "yes"},
        {"nested": 3},
        {"words": {"a": 1}},
        {"counts": {"a": "x"}},
        {"byNumber": {"x": "seven"}},
        {"dbl": float("inf")},
        {"maybeCount": None, "i32": 1.5},
    ],
)
def test_parse_into_turns_every_bad_value_into_a_bind_error(pb: Any, data: dict[str, Any]) -> None:
    with pytest.raises(BindError):
        parse_into(data, pb.EchoRequest())


def test_parse_into_rejects_a_non_object_document(pb: Any) -> None:
    with pytest.raises(BindError):
        parse_into([1, 2], pb.EchoRequest())  # type: ignore[arg-type]


def test_parse_into_rejects_messages_nested_beyond_protobufs_limit(pb: Any) -> None:
    data: dict[str, Any] = {"label": "leaf"}
    for _ in range(200):
        data = {"child": data}
    with pytest.raises(BindError):
        parse_into({"nested": data}, pb.EchoRequest())


def test_to_json_uses_json_names_and_int64_strings(pb: Any) -> None:
    message = pb.EchoRequest(maybe_count=0, i64=2**53 + 1, kind=pb.KIND_LARGE)
    assert to_json(message, emit_unpopulated=False) == {
        "maybeCount": 0,
        "i64": str(2**53 + 1),
        "kind": "KIND_LARGE",
    }


def test_to_json_emits_unpopulated_fields_on_request(pb: Any) -> None:
    out = to_json(pb.Settings(), emit_unpopulated=True)
    assert out == {"colour": "", "size": 0}
    assert to_json(pb.Settings(), emit_unpopulated=False) == {}


def test_dumps_is_compact_utf8() -> None:
    assert dumps({"a": [1, "caf\u00e9"], "b": None}) == '{"a":[1,"café"],"b":null}'.encode()

"""HTTP headers → gRPC metadata and deadline: the request id (kept or generated),
which headers are forwarded and which dropped or rejected, `-bin` metadata, and
Grpc-Timeout / X-Timeout parsing, precedence and capping.

Header names arrive lowercased (Starlette's Headers), as the dicts here are."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.headers import REQUEST_ID, metadata_from, request_id_of, timeout_from
from gateway.jsonmap import BindError

# --- request_id_of ------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["abc", "req-7", "a b", "x" * 128, "~!@#$%^&*()"])
def test_printable_ascii_request_id_is_kept(request_id: str) -> None:
    assert request_id_of({REQUEST_ID: request_id}) == request_id


def test_missing_request_id_is_generated_as_32_hex_digits() -> None:
    generated = request_id_of({})
    assert len(generated) == 32
    int(generated, 16)


def test_generated_request_ids_differ() -> None:
    assert request_id_of({}) != request_id_of({})


def test_empty_request_id_is_replaced() -> None:
    assert len(request_id_of({REQUEST_ID: ""})) == 32


@pytest.mark.parametrize(
    "request_id", ["x" * 129, "caf\u00e9", "a\tb", "a\nb", "a\x00", "a\x7f", "\u2603"]
)
def test_unusable_request_id_is_replaced_by_a_generated_one(request_id: str) -> None:
    replaced = request_id_of({REQUEST_ID: request_id})
    assert replaced != request_id
    assert len(replaced) == 32


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_request_id_is_always_printable_ascii_and_short(request_id: str) -> None:
    result = request_id_of({REQUEST_ID: request_id})
    assert result
    assert result.isascii()
    assert result.isprintable()
    assert len(result) <= 128


# --- metadata_from: what is forwarded -------------------------------------------


def test_request_id_is_the_first_metadata_entry() -> None:
    assert metadata_from({}, "rid") == (("x-request-id", "rid"),)


def test_request_id_header_is_not_forwarded_twice() -> None:
    metadata = metadata_from({REQUEST_ID: "from-caller"}, "chosen")
    assert [value for key, value in metadata if key == REQUEST_ID] == ["chosen"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("authorization", "Bearer abc.def"),
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    ],
)
def test_auth_and_trace_headers_are_forwarded(name: str, value: str) -> None:
    assert (name, value) in metadata_from({name: value}, "rid")


def test_forwarded_headers_follow_the_request_id_in_a_fixed_order() -> None:
    headers = {"tracestate": "k=v", "authorization": "Bearer t", "traceparent": "00-a-b-01"}
    assert [key for key, _ in metadata_from(headers, "rid")] == [
        "x-request-id",
        "authorization",
        "traceparent",
        "tracestate",
    ]


@pytest.mark.parametrize(
    "name",
    [
        # hop-by-hop
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        # HTTP-only or owned by the gRPC client
        "host",
        "content-type",
        "content-length",
        "user-agent",
        "accept",
        "accept-encoding",
        "cookie",
        "x-forwarded-for",
        "if-match",
        "idempotency-key",
        "grpc-timeout",
        "x-timeout",
        "grpc-status",
        "x-custom",
    ],
)
def test_other_http_headers_are_not_forwarded(name: str) -> None:
    assert metadata_from({name: "value"}, "rid") == (("x-request-id", "rid"),)


@pytest.mark.parametrize("name", ["authorization", "traceparent", "tracestate"])
@pytest.mark.parametrize("value", ["", "caf\u00e9", "a\tb", "a\x00b", "a\x7fb", "\u2603"])
def test_unprintable_auth_and_trace_headers_are_dropped(name: str, value: str) -> None:
    assert metadata_from({name: value}, "rid") == (("x-request-id", "rid"),)


def test_one_dropped_header_does_not_drop_the_others() -> None:
    headers = {"authorization": "Bearer \x00", "traceparent": "00-a-b-01"}
    assert dict(metadata_from(headers, "rid")) == {
        "x-request-id": "rid",
        "traceparent": "00-a-b-01",
    }


# --- metadata_from: Grpc-Metadata-* ----------------------------------------------


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("grpc-metadata-tenant", "tenant"),
        ("grpc-metadata-tenant-hint", "tenant-hint"),
        ("grpc-metadata-a.b_c-9", "a.b_c-9"),
        ("grpc-metadata-x", "x"),
    ],
)
def test_grpc_metadata_headers_are_forwarded_without_the_prefix(header: str, key: str) -> None:
    assert (key, "v 1") in metadata_from({header: "v 1"}, "rid")


def test_grpc_metadata_value_may_be_empty() -> None:
    assert ("tenant", "") in metadata_from({"grpc-metadata-tenant": ""}, "rid")


def test_grpc_metadata_headers_keep_the_header_order() -> None:
    headers = {"grpc-metadata-b": "2", "cookie": "c", "grpc-metadata-a": "1"}
    assert metadata_from(headers, "rid") == (("x-request-id", "rid"), ("b", "2"), ("a", "1"))


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [("AAE=", b"\x00\x01"), ("", b""), ("aGk=", b"hi"), ("/+8=", b"\xff\xef")],
)
def test_binary_metadata_is_base64_decoded_to_bytes(encoded: str, decoded: bytes) -> None:
    metadata = dict(metadata_from({"grpc-metadata-blob-bin": encoded}, "rid"))
    assert metadata["blob-bin"] == decoded
    assert isinstance(metadata["blob-bin"], bytes)


def test_binary_metadata_may_carry_any_bytes() -> None:
    raw = bytes(range(256))
    header = base64.b64encode(raw).decode()
    assert dict(metadata_from({"grpc-metadata-x-bin": header}, "rid"))["x-bin"] == raw


@pytest.mark.parametrize("value", ["***", "AAE", "A", "AA=E", "AA E=", "-_8=", "\u00e9"])
def test_binary_metadata_that_is_not_standard_padded_base64_is_rejected(value: str) -> None:
    with pytest.raises(BindError, match="must be base64") as caught:
        metadata_from({"grpc-metadata-blob-bin": value}, "rid")
    assert caught.value.field == "grpc-metadata-blob-bin"


@pytest.mark.parametrize("value", ["caf\u00e9", "a\tb", "a\x00", "a\x7f", "\u2603"])
def test_text_metadata_must_be_printable_ascii(value: str) -> None:
    with pytest.raises(BindError, match="printable ASCII") as caught:
        metadata_from({"grpc-metadata-note": value}, "rid")
    assert caught.value.field == "grpc-metadata-note"


@pytest.mark.parametrize(
    "key",
    [
        # gRPC's own and HTTP/2 connection headers
        "grpc-status",
        "grpc-timeout",
        "grpc-encoding",
        "content-type",
        "te",
        "user-agent",
        "host",
        "connection",
        # not a metadata key
        "",
        "Tenant",
        "bad key",
        "k\u00e9y",
        "a:b",
        "a/b",
    ],
)
def test_unforwardable_metadata_key_is_a_bind_error(key: str) -> None:
    header = f"grpc-metadata-{key}"
    with pytest.raises(BindError, match="cannot be forwarded") as caught:
        metadata_from({header: "v"}, "rid")
    assert caught.value.field == header


def test_grpc_metadata_prefix_is_matched_on_lowercased_names_only() -> None:
    # Starlette lowercases names; anything else is not a Grpc-Metadata header.
    assert metadata_from({"Grpc-Metadata-Tenant": "acme"}, "rid") == (("x-request-id", "rid"),)


# --- timeout_from -------------------------------------------------------------


@pytest.mark.parametrize("default", [5.0, None, 0.25])
def test_no_timeout_header_means_the_method_default(default: float | None) -> None:
    assert timeout_from({}, default) == default


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1H", 3600.0),
        ("2M", 120.0),
        ("3S", 3.0),
        ("500m", 0.5),
        ("250000u", 0.25),
        ("75000000n", 0.075),
        ("99999999S", 99999999.0),
        ("  2S ", 2.0),
    ],
)
def test_grpc_timeout_units(value: str, seconds: float) -> None:
    assert timeout_from({"grpc-timeout": value}, None) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["5", "1x", "1s", "1h", "S", "-1S", "1.5S", "123456789S", "1 S", "1SS", "soon"],
)
def test_malformed_grpc_timeout_is_a_bind_error(value: str) -> None:
    with pytest.raises(BindError, match="Grpc-Timeout"):
        timeout_from({"grpc-timeout": value}, 5.0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1.5", 1.5),
        ("1.5s", 1.5),
        ("2", 2.0),
        (" 3 ", 3.0),
        ("0.001", 0.001),
        ("1e-3", 0.001),
        ("9999999", 9999999.0),
    ],
)
def test_x_timeout_is_seconds_with_an_optional_s(value: str, seconds: float) -> None:
    assert timeout_from({"x-timeout": value}, None) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["soon", "s", "1ss", "1ms", "1m", "1,5", "one"])
def test_x_timeout_that_is_not_a_number_is_a_bind_error(value: str) -> None:
    with pytest.raises(BindError, match="is not a number of seconds"):
        timeout_from({"x-timeout": value}, 5.0)


@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "1e7", "1e400", "nan", "inf", "-inf"])
def test_x_timeout_must_be_positive_and_finite(value: str) -> None:
    with pytest.raises(BindError, match="must be a positive number of seconds"):
        timeout_from({"x-timeout": value}, 5.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"grpc-timeout": "500m"}, 0.5),
        ({"grpc-timeout": "2M"}, 5.0),
        ({"x-timeout": "1"}, 1.0),
        ({"x-timeout": "60"}, 5.0),
        ({"x-timeout": "5"}, 5.0),
    ],
)
def test_requested_timeout_is_capped_by_the_method_default(
    headers: dict[str, str], expected: float
) -> None:
    assert timeout_from(headers, 5.0) == pytest.approx(expected)


def test_requested_timeout_is_used_as_is_when_the_method_has_no_default() -> None:
    assert timeout_from({"x-timeout": "3600"}, None) == 3600.0
    assert timeout_from({"grpc-timeout": "2H"}, None) == 7200.0


def test_grpc_timeout_takes_precedence_over_x_timeout() -> None:
    assert timeout_from({"grpc-timeout": "1S", "x-timeout": "2"}, 5.0) == 1.0


def test_x_timeout_is_ignored_when_grpc_timeout_is_given() -> None:
    assert timeout_from({"grpc-timeout": "1S", "x-timeout": "soon"}, 5.0) == 1.0


def test_empty_grpc_timeout_falls_back_to_x_timeout() -> None:
    assert timeout_from({"grpc-timeout": "", "x-timeout": "2"}, 5.0) == 2.0


def test_empty_timeout_headers_mean_the_method_default() -> None:
    assert timeout_from({"grpc-timeout": "", "x-timeout": ""}, 5.0) == 5.0


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["grpc-timeout", "x-timeout"]),
        st.one_of(st.text(max_size=12), st.from_regex(r"\A[0-9]{1,9}[HMSmuns]?\Z")),
    ),
    st.one_of(st.none(), st.floats(min_value=0.001, max_value=3600)),
)
def test_any_timeout_header_is_a_capped_positive_deadline_or_a_bind_error(
    headers: dict[str, str], default: float | None
) -> None:
    try:
        result = timeout_from(headers, default)
    except BindError:
        return
    if result is None:
        assert default is None
        return
    assert result >= 0
    if default is not None:
        assert result <= default

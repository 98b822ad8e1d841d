"""Page tokens: opaque, bound to tenant and query, tamper-evident."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.platform.errors import InvalidArgument
from services.platform.pagination import PageTokens, clamp_page_size

TOKENS = PageTokens(b"0123456789abcdef0123456789abcdef")
BINDING = {"filter": 'labels.a = "b"', "order_by": "create_time desc"}


def test_round_trip_returns_the_position() -> None:
    token = TOKENS.encode("t1", BINDING, {"k": "2026-01-01T00:00:00Z", "id": "abc"})
    assert TOKENS.decode(token, "t1", BINDING) == {"k": "2026-01-01T00:00:00Z", "id": "abc"}


def test_token_from_another_tenant_is_invalid() -> None:
    token = TOKENS.encode("t1", BINDING, {"id": "abc"})
    with pytest.raises(InvalidArgument) as caught:
        TOKENS.decode(token, "t2", BINDING)
    assert caught.value.violations[0].field == "page_token"


def test_token_with_another_filter_is_invalid() -> None:
    token = TOKENS.encode("t1", BINDING, {"id": "abc"})
    with pytest.raises(InvalidArgument):
        TOKENS.decode(token, "t1", {**BINDING, "filter": ""})


def test_tampered_token_is_invalid() -> None:
    token = TOKENS.encode("t1", BINDING, {"id": "abc"})
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    with pytest.raises(InvalidArgument):
        TOKENS.decode(flipped, "t1", BINDING)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_garbage_tokens_are_invalid_argument(garbage: str) -> None:
    with pytest.raises(InvalidArgument):
        TOKENS.decode(garbage, "t1", BINDING)


@pytest.mark.parametrize(("requested", "expected"), [(0, 50), (-1, 50), (10, 10), (5000, 1000)])
def test_page_size_is_clamped(requested: int, expected: int) -> None:
    assert clamp_page_size(requested, 50, 1000) == expected

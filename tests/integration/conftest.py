"""Tenant fixtures every integration suite shares: a fresh tenant per test and
bearer metadata minted for it (or for any other tenant, user and scopes)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.conftest import ALL_SCOPES, Mint, bearer

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture
def tenant() -> str:
    """A fresh tenant per test, so lists and feeds hold only this test's data."""
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture
def as_tenant(mint: Mint) -> Callable[..., Metadata]:
    """as_tenant(tenant, user="alice", scopes=ALL_SCOPES) → that caller's metadata."""

    def _as(tenant: str, user: str = "alice", scopes: str = ALL_SCOPES) -> Metadata:
        return bearer(mint(tenant, user=user, scopes=scopes))

    return _as


@pytest.fixture
def auth(tenant: str, as_tenant: Callable[..., Metadata]) -> Metadata:
    """The test tenant's metadata, with every scope."""
    return as_tenant(tenant)

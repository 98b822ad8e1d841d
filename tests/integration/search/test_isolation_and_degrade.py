"""Tenant isolation in every mode and filter; NULL embeddings and an open
embedder breaker degrade to keyword, and the breaker closes again."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from protomesh.search.v1 import search_service_pb2 as pb
from tests.integration.conftest import Metadata
from tests.integration.search.conftest import Stack, embedded, names, put, search

MODES = [pb.SEARCH_MODE_HYBRID, pb.SEARCH_MODE_KEYWORD, pb.SEARCH_MODE_VECTOR]


@pytest.mark.parametrize("mode", MODES)
async def test_tenant_b_never_sees_tenant_a_in_any_mode_or_filter(
    stack: Stack, tenant: str, as_tenant: Callable[..., Metadata], mode: int
) -> None:
    a = as_tenant(tenant)
    b = as_tenant(tenant + "-b")
    doc = await put(
        stack, a, "secret", "Quarterly secret plan about hovercraft.", labels={"k": "v"}
    )
    await put(stack, b, "mine", "Bicycle maintenance notes.", labels={"k": "v"})
    await embedded(stack, a)
    filters = [
        pb.SearchFilter(),
        pb.SearchFilter(labels={"k": "v"}),
        pb.SearchFilter(document_names=["documents/secret"]),
    ]
    for f in filters:
        seen = await search(
            stack, b, "secret plan hovercraft", min_sequence=doc.sequence, mode=mode, filter=f
        )
        assert "documents/secret" not in names(seen)
        assert all("hovercraft" not in r.text for r in seen.results)
    own = await search(stack, a, "hovercraft", mode=mode)
    assert names(own)[0] == "documents/secret"
    status_b = await stack.search.GetIndexStatus(pb.GetIndexStatusRequest(), metadata=b)
    assert status_b.document_count == 1


async def test_chunks_without_embeddings_are_found_by_keyword(stack: Stack, auth: Metadata) -> None:
    stack.embedder.failing = True
    try:
        doc = await put(stack, auth, "noemb", "Axolotls regrow limbs and hearts.")
        found = await search(stack, auth, "axolotls", min_sequence=doc.sequence)
        assert names(found) == ["documents/noemb"]
        assert found.degraded
        assert found.mode == pb.SEARCH_MODE_KEYWORD
        assert found.degraded_reason
        status = await stack.search.GetIndexStatus(pb.GetIndexStatusRequest(), metadata=auth)
        assert status.pending_embedding_count == 1
    finally:
        stack.embedder.failing = False
    await embedded(stack, auth)  # the pass retries and fills it in
    vec = await search(stack, auth, "axolotls", mode=pb.SEARCH_MODE_VECTOR)
    assert names(vec) == ["documents/noemb"]
    assert not vec.degraded


async def test_vector_mode_with_nothing_embedded_degrades_to_keyword(
    stack: Stack, auth: Metadata
) -> None:
    stack.embedder.failing = True
    try:
        doc = await put(stack, auth, "vd", "Tardigrades survive vacuum.")
        found = await search(
            stack, auth, "tardigrades", min_sequence=doc.sequence, mode=pb.SEARCH_MODE_VECTOR
        )
        assert found.degraded
        assert names(found) == ["documents/vd"]
    finally:
        stack.embedder.failing = False
    await embedded(stack, auth)


async def test_breaker_opens_on_failures_and_closes_after_recovery(
    stack: Stack, auth: Metadata
) -> None:
    doc = await put(stack, auth, "brk", "Capybaras are calm rodents.")
    await embedded(stack, auth)
    stack.embedder.failing = True
    try:
        for i in range(3):  # distinct queries: not served from the query cache
            r = await search(stack, auth, f"capybaras calm {i}", min_sequence=doc.sequence)
            assert r.degraded
            assert names(r) == ["documents/brk"]
        assert stack.guarded.breaker.is_open
        calls = stack.embedder.calls
        r = await search(stack, auth, "capybaras rodents open")
        assert r.degraded
        assert "circuit breaker" in r.degraded_reason
        assert stack.embedder.calls == calls  # open: the embedder is not called at all
        status = await stack.search.GetIndexStatus(pb.GetIndexStatusRequest(), metadata=auth)
        assert status.degraded
        assert status.degraded_reason
    finally:
        stack.embedder.failing = False
    stack.breaker_clock.offset += 0.6  # past reset_seconds: half-open, one trial
    r = await search(stack, auth, "capybaras after recovery")
    assert not r.degraded
    assert r.mode == pb.SEARCH_MODE_HYBRID
    assert not stack.guarded.breaker.is_open

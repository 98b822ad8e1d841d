"""Search over gRPC against the real indexer: modes, fusion, filters, paging,
snippets, read-your-writes, updates/deletes, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from google.protobuf import timestamp_pb2

from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.search.v1 import search_service_pb2 as pb
from tests.integration.conftest import Metadata
from tests.integration.search.conftest import Stack, embedded, names, put, search

HYBRID, KEYWORD, VECTOR = pb.SEARCH_MODE_HYBRID, pb.SEARCH_MODE_KEYWORD, pb.SEARCH_MODE_VECTOR


async def test_write_then_search_with_min_sequence_always_finds_it(
    stack: Stack, auth: Metadata
) -> None:
    for i in range(15):
        doc = await put(
            stack, auth, f"ryw-{i}", f"Freshly written note number {i} about zeppelin{i}."
        )
        found = await search(stack, auth, f"zeppelin{i}", min_sequence=doc.sequence, mode=KEYWORD)
        assert names(found) == [f"documents/ryw-{i}"]
        assert found.applied_sequence >= doc.sequence


async def test_hybrid_is_default_and_fuses_both_legs(stack: Stack, auth: Metadata) -> None:
    a = await put(stack, auth, "otters", "Sea otters hold hands while sleeping in kelp forests.")
    await put(stack, auth, "kelp", "Kelp forests grow quickly in cold coastal water.")
    await put(stack, auth, "cars", "Electric cars need charging stations on highways.")
    await embedded(stack, auth)
    found = await search(stack, auth, "otters sleeping in kelp", min_sequence=a.sequence)
    assert found.mode == HYBRID
    assert not found.degraded
    assert names(found)[0] == "documents/otters"
    top = found.results[0]
    assert top.keyword_rank == 1
    assert top.vector_rank == 1
    assert top.score == pytest.approx(1.0)  # best in both legs: 1 after min-max in each
    assert top.chunk_id == "documents/otters/chunks/0"
    assert "documents/cars" not in names(found)[:2]
    rrf = await search(
        stack, auth, "otters sleeping in kelp", fusion=pb.FUSION_RRF, min_sequence=a.sequence
    )
    assert names(rrf)[0] == "documents/otters"
    assert rrf.results[0].score == pytest.approx(0.5 / 61 + 0.5 / 61)


async def test_snippet_is_plain_text_with_highlight_ranges(stack: Stack, auth: Metadata) -> None:
    doc = await put(stack, auth, "snip", "The <b>quick</b> marmot whistles loudly at dawn.")
    found = await search(stack, auth, "marmot", min_sequence=doc.sequence, mode=KEYWORD)
    result = found.results[0]
    assert "\ue000" not in result.snippet
    assert "marmot" in result.snippet
    spans = [result.snippet[h.start : h.end] for h in result.highlights]
    assert spans == ["marmot"]


async def test_keyword_and_vector_modes_report_their_own_scores(
    stack: Stack, auth: Metadata
) -> None:
    doc = await put(stack, auth, "giraffe", "Giraffes browse acacia leaves on the savanna.")
    await embedded(stack, auth)
    kw = await search(stack, auth, "giraffes acacia", min_sequence=doc.sequence, mode=KEYWORD)
    assert kw.mode == KEYWORD
    assert kw.results[0].vector_rank == 0
    assert kw.results[0].score == pytest.approx(kw.results[0].keyword_score)
    vec = await search(stack, auth, "giraffes acacia", mode=VECTOR)
    assert vec.mode == VECTOR
    assert vec.results[0].keyword_rank == 0
    assert vec.results[0].score == pytest.approx(vec.results[0].vector_score)
    assert 0 < vec.results[0].vector_score <= 1.0


async def test_update_and_delete_propagate(stack: Stack, auth: Metadata) -> None:
    doc = await put(stack, auth, "change", "Original text mentions pelicans.")
    updated = await stack.documents.UpdateDocument(
        doc_pb.UpdateDocumentRequest(
            document=doc_pb.Document(name="documents/change", content="Now it mentions flamingos."),
            update_mask={"paths": ["content"]},
        ),
        metadata=auth,
    )
    assert names(await search(stack, auth, "flamingos", min_sequence=updated.sequence)) == [
        "documents/change"
    ]
    assert names(await search(stack, auth, "pelicans", mode=KEYWORD)) == []
    deleted = await stack.documents.DeleteDocument(
        doc_pb.DeleteDocumentRequest(name="documents/change"), metadata=auth
    )
    assert doc.sequence < deleted.sequence
    gone = await search(stack, auth, "flamingos", min_sequence=deleted.sequence)
    assert names(gone) == []


async def test_unchanged_chunks_keep_their_embeddings_on_update(
    stack: Stack, auth: Metadata
) -> None:
    first = "Alpha paragraph about granite quarries and stone cutting."
    second = "Beta paragraph about marble statues."
    await put(stack, auth, "keep", f"{first}\n\n{second}", title="Stones")
    await embedded(stack, auth)
    calls = stack.embedder.calls
    updated = await stack.documents.UpdateDocument(
        doc_pb.UpdateDocumentRequest(
            document=doc_pb.Document(name="documents/keep", labels={"kind": "rock"}),
            update_mask={"paths": ["labels"]},
        ),
        metadata=auth,
    )
    await search(stack, auth, "granite", min_sequence=updated.sequence)
    status = await stack.search.GetIndexStatus(pb.GetIndexStatusRequest(), metadata=auth)
    assert status.pending_embedding_count == 0  # nothing to re-embed: same texts
    assert stack.embedder.calls - calls <= 1  # at most the query's own embedding


async def test_filters_labels_names_and_time(stack: Stack, auth: Metadata) -> None:
    await put(stack, auth, "f-a", "Lighthouse keepers log storms.", labels={"team": "red"})
    await put(stack, auth, "f-b", "Lighthouse lenses focus light.", labels={"team": "blue"})
    last = await put(stack, auth, "f-c", "Lighthouse history in Maine.", labels={"team": "red"})
    await embedded(stack, auth)
    for mode in (HYBRID, KEYWORD, VECTOR):
        red = await search(
            stack,
            auth,
            "lighthouse",
            min_sequence=last.sequence,
            mode=mode,
            filter=pb.SearchFilter(labels={"team": "red"}),
        )
        assert sorted(set(names(red))) == ["documents/f-a", "documents/f-c"], mode
        only_b = await search(
            stack,
            auth,
            "lighthouse",
            mode=mode,
            filter=pb.SearchFilter(document_names=["documents/f-b"]),
        )
        assert names(only_b) == ["documents/f-b"], mode
    future = timestamp_pb2.Timestamp(seconds=4_000_000_000)
    assert (
        names(
            await search(stack, auth, "lighthouse", filter=pb.SearchFilter(min_update_time=future))
        )
        == []
    )
    before = await search(stack, auth, "lighthouse", filter=pb.SearchFilter(max_update_time=future))
    assert len(set(names(before))) == 3


async def test_pages_cover_all_results_once(stack: Stack, auth: Metadata) -> None:
    last = None
    for i in range(13):
        last = await put(stack, auth, f"page-{i}", f"Walrus tusks measure {i} units in report {i}.")
    assert last is not None
    seen: list[str] = []
    token = ""
    while True:
        page = await search(
            stack, auth, "walrus tusks", min_sequence=last.sequence, page_size=5, page_token=token
        )
        seen += names(page)
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(f"documents/page-{i}" for i in range(13))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await search(
            stack, auth, "other query", page_size=5, page_token=page.next_page_token or "x"
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_search_stream_sends_results_then_summary(stack: Stack, auth: Metadata) -> None:
    doc = await put(stack, auth, "stream", "Narwhal tusks are teeth.")
    messages = [
        m
        async for m in stack.search.SearchStream(
            pb.SearchRequest(query="narwhal", min_sequence=doc.sequence), metadata=auth
        )
    ]
    assert messages[0].result.document_name == "documents/stream"
    assert messages[-1].summary.result_count == len(messages) - 1


@pytest.mark.parametrize(
    "request_fields",
    [
        {"query": ""},
        {"query": "   "},
        {"query": "x", "bm25_weight": 1.5},
        {"query": "x", "vector_weight": -0.1},
        {"query": "x", "bm25_weight": 0.0, "vector_weight": 0.0},
        {"query": "x", "page_size": 0},
        {"query": "x", "page_size": 51},
        {"query": "x", "mode": 9},
        {"query": "x", "rrf_k": -1},
        {"query": "x", "filter": pb.SearchFilter(document_names=["nope"])},
    ],
)
async def test_bad_input_is_invalid_argument(
    stack: Stack, auth: Metadata, request_fields: dict[str, object]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.search.Search(pb.SearchRequest(**request_fields), metadata=auth)  # type: ignore[arg-type]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_min_sequence_beyond_the_feed_is_deadline_exceeded(
    stack: Stack, auth: Metadata
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.search.Search(
            pb.SearchRequest(query="anything", min_sequence=10**12), metadata=auth, timeout=1.0
        )
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "min_sequence" in (err.value.details() or "")


async def test_index_status_and_reindex(
    stack: Stack, auth: Metadata, as_tenant: Callable[..., Metadata]
) -> None:
    doc = await put(stack, auth, "st", "Status check about puffins.\n\nSecond part about auks.")
    await search(stack, auth, "puffins", min_sequence=doc.sequence)
    await embedded(stack, auth)
    status = await stack.search.GetIndexStatus(pb.GetIndexStatusRequest(), metadata=auth)
    assert status.applied_sequence >= doc.sequence
    assert status.document_count == 1
    assert status.embedder_model == "hashing-384"
    assert status.embedding_dimensions == 384
    queued = await stack.search.ReindexTenant(pb.ReindexTenantRequest(), metadata=auth)
    assert queued.queued_chunk_count == status.chunk_count
    # old vectors keep serving while the pass redoes them
    vec = await search(stack, auth, "puffins", mode=VECTOR)
    assert names(vec)[0] == "documents/st"
    await embedded(stack, auth)
    reader = as_tenant(stack_tenant := "reader-" + doc.name[-2:], scopes="search:read")
    del stack_tenant
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.search.ReindexTenant(pb.ReindexTenantRequest(), metadata=reader)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_concurrent_writers_all_become_visible(stack: Stack, auth: Metadata) -> None:
    docs = await asyncio.gather(
        *(put(stack, auth, f"cw-{i}", f"Concurrent ibis sighting {i}.") for i in range(20))
    )
    top = max(d.sequence for d in docs)
    found = await search(stack, auth, "ibis sighting", min_sequence=top, page_size=50, mode=KEYWORD)
    assert len(set(names(found))) == 20

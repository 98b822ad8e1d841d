"""Tenant isolation on every RPC and every REST route, against the real processes.

Tenant A owns real resources: a document (indexed), a finished task with events,
a budget with spend, a usage record, an active reservation and a tier. An
intruder with every scope then calls each RPC directly on its service's port and
each route through the gateway (SSE for the feeds), naming or listing A's data:

- a call on one of A's names fails with NOT_FOUND, exactly as the same call on a
  name that never existed (so not even existence leaks);
- lists, searches in every mode, feeds, reports and exports carry none of A's
  data (no A string the intruder did not send itself appears in any answer);
- creating with A's ids or idempotency keys makes the intruder's own resource,
  never a replay of A's;
- afterwards A reads its data exactly as before.

The case tables are checked against the contracts: the RPCs come from the
generated descriptors and the routes from the gateway's /openapi.json, so an RPC
or a route added without a case fails `test_every_rpc_and_route_has_a_case`.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.task.v1 import task_service_pb2 as task_pb
from tests.cluster import Cluster
from tests.conftest import ALL_SCOPES, bearer
from tests.security.attacks import (
    SERVICE_KEYS,
    attack_tokens,
    call_mcp_tool,
    grpc_methods,
    mcp_result,
    openapi_operations,
)

Ids = Mapping[str, str]
Build = Callable[[Ids], Message | list[Message]]
Check = Callable[["World", Any], None]
CALL_SECONDS = 20.0
HTTP_STATUS = {
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
SEARCH_MODES = (
    search_pb.SEARCH_MODE_HYBRID,
    search_pb.SEARCH_MODE_KEYWORD,
    search_pb.SEARCH_MODE_VECTOR,
)
WHOLE_RANGE = {"start_time": "2000-01-01T00:00:00Z", "end_time": "2100-01-01T00:00:00Z"}
WHOLE_RANGE_QUERY = {"startTime": WHOLE_RANGE["start_time"], "endTime": WHOLE_RANGE["end_time"]}


# -- the world: tenant A's resources and the intruder's own marks ---------------


@dataclass
class World:
    cluster: Cluster
    owner_token: str
    intruder_token: str
    ids: dict[str, str]
    """A's resource ids and strings, by the placeholder the cases use."""
    never: dict[str, str]
    """The same placeholders for resources that never existed."""
    secrets: frozenset[str]
    """A's strings that no other tenant may ever read."""
    owner: dict[str, Any] = field(default_factory=dict)
    """A's resources as created (proto3 JSON), for comparisons."""
    intruder_documents: frozenset[str] = frozenset()
    intruder_usage_keys: frozenset[str] = frozenset()
    intruder_usage_micros: int = 0
    intruder_chunks: int = 0
    snapshot: str = ""

    def fresh_token(self) -> str:
        """A token of a tenant that has never been seen (for creating with A's ids)."""
        return self.cluster.token("iso-x-" + uuid.uuid4().hex[:10])


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _json(message: Message) -> dict[str, Any]:
    value: dict[str, Any] = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True
    )
    return value


async def _unary(cluster: Cluster, path: str, request: Message, token: str) -> Any:
    method = grpc_methods()[path]
    service = SERVICE_KEYS[method.containing_service.full_name]
    async with cluster.channel(service) as channel:
        call = channel.unary_unary(
            path,
            request_serializer=_serialize,
            response_deserializer=GetMessageClass(method.output_type).FromString,
        )
        return await call(request, metadata=bearer(token), timeout=CALL_SECONDS)


async def _indexed(cluster: Cluster, token: str, word: str, sequence: int) -> int:
    """Waits until the tenant's document with `word` is searchable; its chunk count."""
    request = search_pb.SearchRequest(
        query=word, mode=search_pb.SEARCH_MODE_KEYWORD, min_sequence=sequence
    )
    for _ in range(100):
        found = await _unary(cluster, "/protomesh.search.v1.SearchService/Search", request, token)
        if found.results:
            status = await _unary(
                cluster,
                "/protomesh.search.v1.SearchService/GetIndexStatus",
                search_pb.GetIndexStatusRequest(),
                token,
            )
            if not status.pending_embedding_count:
                return int(status.chunk_count)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{word!r} was never indexed")


async def _finished(cluster: Cluster, token: str, name: str) -> None:
    terminal = {task_pb.TASK_STATE_COMPLETED, task_pb.TASK_STATE_FAILED}
    for _ in range(200):
        task = await _unary(
            cluster,
            "/protomesh.task.v1.TaskService/GetTask",
            task_pb.GetTaskRequest(name=name),
            token,
        )
        if task.status.state in terminal:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never finished")


async def owner_snapshot(world: World) -> str:
    """A's data as A reads it (stable once the fixture is set up)."""
    cluster, token = world.cluster, world.owner_token
    ids = world.ids
    calls: list[tuple[str, Message]] = [
        (
            "/protomesh.document.v1.DocumentService/GetDocument",
            doc_pb.GetDocumentRequest(name=ids["doc"]),
        ),
        (
            "/protomesh.task.v1.TaskService/GetTask",
            task_pb.GetTaskRequest(name=ids["task"], history_length=1000),
        ),
        ("/protomesh.cost.v1.CostService/ListBudgets", cost_pb.ListBudgetsRequest()),
        ("/protomesh.cost.v1.CostService/ListUsage", cost_pb.ListUsageRequest()),
        (
            "/protomesh.cost.v1.CostService/GetTenantTier",
            cost_pb.GetTenantTierRequest(name=f"tenants/{ids['tenant']}/tier"),
        ),
    ]
    answers = await asyncio.gather(*(_unary(cluster, p, r, token) for p, r in calls))
    return json.dumps([_json(answer) for answer in answers], sort_keys=True)


@pytest.fixture(scope="module")
async def world(cluster: Cluster) -> World:
    tag = uuid.uuid4().hex[:10]
    owner, intruder = f"iso-a-{tag}", f"iso-b-{tag}"
    admin = cluster.token(owner, scopes=ALL_SCOPES + " cost:admin")
    a, b = cluster.token(owner), cluster.token(intruder)
    ids = {
        "tenant": owner,
        "doc_id": f"iso-doc-{tag}",
        "doc_request": f"iso-doc-req-{tag}",
        "title": f"Ledger of {tag}",
        "word": f"quokka{tag}",
        "secret": f"saffron{tag}",
        "label": f"val-{tag}",
        "task_request": f"iso-task-req-{tag}",
        "context": f"iso-ctx-{tag}",
        "budget_id": f"iso-budget-{tag}",
        "budget_request": f"iso-budget-req-{tag}",
        "budget_display": f"Budget of {tag}",
        "usage_key": f"iso-usage-{tag}",
        "user": f"iso-user-{tag}",
        "reservation_request": f"iso-res-req-{tag}",
        "charge_request": f"iso-charge-req-{tag}",
    }
    ids["doc"] = f"documents/{ids['doc_id']}"
    ids["content"] = f"The {ids['word']} keeps the {ids['secret']} ledger."

    document = await _unary(
        cluster,
        "/protomesh.document.v1.DocumentService/CreateDocument",
        owner_document_request(ids),
        a,
    )
    task = await _unary(
        cluster, "/protomesh.task.v1.TaskService/CreateTask", owner_task_request(ids), a
    )
    ids["task"] = task.name
    ids["task_id"] = task.name.removeprefix("tasks/")
    # A tier, so that GetTenantTier has something to leak. Its rate (1,000 calls a minute
    # per class, a minute's burst) is far above what the snapshots after each case read.
    await _unary(
        cluster,
        "/protomesh.cost.v1.CostService/UpdateTenantTier",
        cost_pb.UpdateTenantTierRequest(
            tier=cost_pb.TenantTier(name=f"tenants/{owner}/tier", tier="enterprise")
        ),
        admin,
    )
    budget = await _unary(
        cluster, "/protomesh.cost.v1.CostService/CreateBudget", owner_budget_request(ids), a
    )
    ids["budget"] = budget.name
    usage = await _unary(
        cluster, "/protomesh.cost.v1.CostService/RecordUsage", owner_usage_request(ids), a
    )
    ids["usage"] = usage.name
    reservation = await _unary(
        cluster, "/protomesh.cost.v1.CostService/Reserve", owner_reserve_request(ids), a
    )
    ids["reservation"] = reservation.name
    ids["reservation_id"] = reservation.name.removeprefix("reservations/")
    charged = await _unary(
        cluster, "/protomesh.cost.v1.CostService/Charge", owner_charge_request(ids), a
    )
    ids["charge"] = charged.usage_record.name

    # The intruder's own marks: what its feeds and reports must show, and nothing else.
    mark = await _unary(
        cluster,
        "/protomesh.document.v1.DocumentService/CreateDocument",
        doc_pb.CreateDocumentRequest(
            document=doc_pb.Document(title="intruder note", content=f"wombat{tag} burrow notes")
        ),
        b,
    )
    spent = await _unary(
        cluster,
        "/protomesh.cost.v1.CostService/RecordUsage",
        cost_pb.RecordUsageRequest(
            usage=cost_pb.TokenUsage(model="gpt-4o-mini", input_tokens=10, output_tokens=5),
            idempotency_key=f"iso-b-usage-{tag}",
        ),
        b,
    )
    await _finished(cluster, a, ids["task"])
    await _indexed(cluster, a, ids["word"], document.sequence)
    intruder_chunks = await _indexed(cluster, b, f"wombat{tag}", mark.sequence)

    never_tag = uuid.uuid4().hex[:10]
    never = {
        **ids,
        "tenant": f"iso-n-{never_tag}",
        "doc_id": f"iso-never-{never_tag}",
        "doc": f"documents/iso-never-{never_tag}",
        "task_id": str(uuid.uuid4()),
        "budget_id": f"iso-never-{never_tag}",
        "reservation_id": uuid.uuid4().hex,
        "context": f"iso-ctx-never-{never_tag}",
    }
    never["task"] = f"tasks/{never['task_id']}"
    never["budget"] = f"budgets/{never['budget_id']}"
    never["reservation"] = f"reservations/{never['reservation_id']}"
    secrets = {
        value
        for key, value in ids.items()
        if key not in {"content"}  # a sentence; its two unique words are secrets of their own
    }
    # A budget's etag is a digest of its fields: another tenant with the same fields has it.
    secrets |= {usage.name, document.etag}
    built = World(
        cluster=cluster,
        owner_token=a,
        intruder_token=b,
        ids=ids,
        never=never,
        secrets=frozenset(secrets),
        owner={"document": _json(document)},
        intruder_documents=frozenset({mark.name}),
        intruder_usage_keys=frozenset({spent.idempotency_key}),
        intruder_usage_micros=int(spent.amount_micros),
        intruder_chunks=intruder_chunks,
    )
    built.snapshot = await owner_snapshot(built)
    return built


def owner_document_request(i: Ids) -> doc_pb.CreateDocumentRequest:
    return doc_pb.CreateDocumentRequest(
        document=doc_pb.Document(
            title=i["title"], content=i["content"], labels={"iso": i["label"]}
        ),
        document_id=i["doc_id"],
        request_id=i["doc_request"],
    )


def owner_task_request(i: Ids) -> task_pb.CreateTaskRequest:
    request = task_pb.CreateTaskRequest(
        task=task_pb.Task(type="noop", context_id=i["context"]), request_id=i["task_request"]
    )
    request.task.input.update({"progress_steps": 2})
    return request


def owner_budget_request(i: Ids) -> cost_pb.CreateBudgetRequest:
    return cost_pb.CreateBudgetRequest(
        budget=cost_pb.Budget(
            display_name=i["budget_display"],
            scope_kind=cost_pb.SCOPE_KIND_TENANT,
            period=cost_pb.PERIOD_MONTH,
            hard_limit_micros=10**12,
            alert_thresholds_percent=[50],
        ),
        budget_id=i["budget_id"],
        request_id=i["budget_request"],
    )


def owner_usage_request(i: Ids) -> cost_pb.RecordUsageRequest:
    return cost_pb.RecordUsageRequest(
        usage=cost_pb.TokenUsage(model="gpt-4o-mini", input_tokens=4321, output_tokens=1234),
        attribution=cost_pb.Attribution(user_id=i["user"], task=i["task"]),
        idempotency_key=i["usage_key"],
    )


def owner_charge_request(i: Ids) -> cost_pb.ChargeRequest:
    return cost_pb.ChargeRequest(
        usage=cost_pb.TokenUsage(model="gpt-4o-mini", input_tokens=2345, output_tokens=678),
        attribution=cost_pb.Attribution(user_id=i["user"], task=i["task"]),
        request_id=i["charge_request"],
    )


def owner_reserve_request(i: Ids) -> cost_pb.ReserveRequest:
    request = cost_pb.ReserveRequest(
        amount_micros=777_001,
        attribution=cost_pb.Attribution(user_id=i["user"], task=i["task"]),
        request_id=i["reservation_request"],
    )
    request.ttl.FromSeconds(3600)
    return request


# -- the cases ---------------------------------------------------------------


@dataclass(frozen=True)
class Rest:
    """One REST form of a case: path parameters, query and JSON body (strings may
    hold `{placeholders}` of the world's ids)."""

    path: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class Case:
    """One cross-tenant call, over gRPC and over each of its REST routes."""

    request: Build
    code: grpc.StatusCode
    rest: Mapping[str, Rest]
    same_as_never: bool = False
    """The answer must equal the answer for names that never existed."""
    fresh_intruder: bool = False
    """Made by a brand-new tenant (creates that reuse A's ids)."""
    until: str = ""
    """Read a stream until this intruder mark appears (`documents`, `usage`)."""
    check: Check | None = None


def _not_found(request: Build, rest: Mapping[str, Rest]) -> Case:
    return Case(request, grpc.StatusCode.NOT_FOUND, rest, same_as_never=True)


def _results(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, list):
        return [item["result"] for item in payload if "result" in item]
    results: list[dict[str, Any]] = payload["results"]
    return results


def only_intruder_search_results(world: World, payload: Any) -> None:
    names = {result["documentName"] for result in _results(payload)}
    assert names <= world.intruder_documents, names


def only_intruder_documents(world: World, payload: Any) -> None:
    names = {document["name"] for document in payload["documents"]}
    assert names <= world.intruder_documents, names


def only_intruder_changes(world: World, payload: Any) -> None:
    names = {item["change"]["documentName"] for item in payload if "change" in item}
    assert names == world.intruder_documents, names


def batch_get_finds_nothing(world: World, payload: Any) -> None:
    assert payload["documents"] == [], payload
    assert payload["missingNames"] == [world.ids["doc"]], payload


def a_new_document_not_a_replay(world: World, payload: Any) -> None:
    owner = world.owner["document"]
    assert payload["sequence"] != owner["sequence"], payload
    assert payload["etag"] != owner["etag"], payload


def a_new_batch_document(world: World, payload: Any) -> None:
    (result,) = payload["results"]
    assert result["name"] == world.ids["doc"], payload
    assert not result["replayed"], payload
    assert result["sequence"] != world.owner["document"]["sequence"], payload


def index_counts_only_the_intruder(world: World, payload: Any) -> None:
    assert int(payload["documentCount"]) == len(world.intruder_documents), payload
    assert int(payload["chunkCount"]) == world.intruder_chunks, payload


def reindex_queues_only_the_intruder(world: World, payload: Any) -> None:
    assert int(payload["queuedChunkCount"]) == world.intruder_chunks, payload


def no_tasks(world: World, payload: Any) -> None:
    assert payload["tasks"] == [], payload


def a_new_task_not_a_replay(world: World, payload: Any) -> None:
    assert payload["name"] != world.ids["task"], payload


def a_new_usage_record(world: World, payload: Any) -> None:
    assert payload["name"] != world.ids["usage"], payload


def only_intruder_usage(world: World, payload: Any) -> None:
    keys = {record["idempotencyKey"] for record in payload["usageRecords"]}
    assert keys == world.intruder_usage_keys, keys


def a_new_charge(world: World, payload: Any) -> None:
    assert payload["usageRecord"]["name"] != world.ids["charge"], payload


def a_new_budget_without_spend(world: World, payload: Any) -> None:
    assert int(payload["spentMicros"]) == 0, payload
    assert int(payload["reservedMicros"]) == 0, payload


def no_budgets(world: World, payload: Any) -> None:
    assert payload["budgets"] == [], payload


def a_new_reservation(world: World, payload: Any) -> None:
    assert payload["name"] != world.ids["reservation"], payload


def report_of_the_intruder_only(world: World, payload: Any) -> None:
    total = payload["total"]
    assert int(total["recordCount"]) == len(world.intruder_usage_keys), payload
    assert int(total["amountMicros"]) == world.intruder_usage_micros, payload


def export_of_the_intruder_only(world: World, payload: Any) -> None:
    rows = [line for line in payload.splitlines()[1:] if line]
    assert len(rows) == len(world.intruder_usage_keys), payload
    assert all(key in payload for key in world.intruder_usage_keys), payload


def only_intruder_spend(world: World, payload: Any) -> None:
    keys = {item["usage"]["idempotencyKey"] for item in payload if "usage" in item}
    assert keys == world.intruder_usage_keys, payload
    assert not [item for item in payload if "alert" in item], payload


def _search(mode: int) -> Build:
    return lambda i: search_pb.SearchRequest(query=i["word"], mode=mode, page_size=50)


def _search_rest(mode: int) -> dict[str, Rest]:
    name = search_pb.SearchMode.Name(mode)
    return {
        "SearchService_Search": Rest(body={"query": "{word}", "mode": name, "pageSize": 50}),
        "SearchService_Search_1": Rest(query={"query": "{word}", "mode": name, "pageSize": 50}),
    }


def _update_document(i: Ids) -> doc_pb.UpdateDocumentRequest:
    request = doc_pb.UpdateDocumentRequest(document=doc_pb.Document(name=i["doc"], title="pwned"))
    request.update_mask.paths.append("title")
    return request


def _update_budget(i: Ids) -> cost_pb.UpdateBudgetRequest:
    request = cost_pb.UpdateBudgetRequest(
        budget=cost_pb.Budget(name=i["budget"], hard_limit_micros=1)
    )
    request.update_mask.paths.append("hard_limit_micros")
    return request


def _send_input(i: Ids) -> task_pb.SendTaskInputRequest:
    request = task_pb.SendTaskInputRequest(name=i["task"])
    request.input.update({"answer": "pwned"})
    return request


def _report(group_by: int) -> Build:
    def build(i: Ids) -> cost_pb.GetSpendReportRequest:
        request = cost_pb.GetSpendReportRequest(group_by=group_by)
        request.start_time.FromJsonString(WHOLE_RANGE["start_time"])
        request.end_time.FromJsonString(WHOLE_RANGE["end_time"])
        return request

    return build


def _export(i: Ids) -> cost_pb.ExportSpendRequest:
    request = cost_pb.ExportSpendRequest()
    request.start_time.FromJsonString(WHOLE_RANGE["start_time"])
    request.end_time.FromJsonString(WHOLE_RANGE["end_time"])
    return request


DOCUMENT_BODY = {"title": "{title}", "content": "{content}", "labels": {"iso": "{label}"}}
CHARGE_BODY = {
    "usage": {"model": "gpt-4o-mini", "inputTokens": 2345, "outputTokens": 678},
    "attribution": {"userId": "{user}", "task": "{task}"},
    "requestId": "{charge_request}",
}
USAGE_BODY = {
    "usage": {"model": "gpt-4o-mini", "inputTokens": 4321, "outputTokens": 1234},
    "attribution": {"userId": "{user}", "task": "{task}"},
    "idempotencyKey": "{usage_key}",
}
DOC = {"name": "{doc_id}"}
TASK = {"name": "{task_id}"}
BUDGET = {"name": "{budget_id}"}
RESERVATION = {"name": "{reservation_id}"}

# By gRPC path: each RPC's cases (several where the RPC has modes worth probing).
CASES: dict[str, tuple[Case, ...]] = {
    # DocumentService
    "/protomesh.document.v1.DocumentService/CreateDocument": (
        Case(
            owner_document_request,
            grpc.StatusCode.OK,
            {
                "DocumentService_CreateDocument": Rest(
                    query={"documentId": "{doc_id}", "requestId": "{doc_request}"},
                    body=DOCUMENT_BODY,
                )
            },
            fresh_intruder=True,
            check=a_new_document_not_a_replay,
        ),
    ),
    "/protomesh.document.v1.DocumentService/GetDocument": (
        _not_found(
            lambda i: doc_pb.GetDocumentRequest(name=i["doc"], view=doc_pb.DOCUMENT_VIEW_FULL),
            {"DocumentService_GetDocument": Rest(DOC, {"view": "DOCUMENT_VIEW_FULL"})},
        ),
    ),
    "/protomesh.document.v1.DocumentService/BatchGetDocuments": (
        Case(
            lambda i: doc_pb.BatchGetDocumentsRequest(names=[i["doc"]]),
            grpc.StatusCode.OK,
            {"DocumentService_BatchGetDocuments": Rest(query={"names": "{doc}"})},
            same_as_never=True,
            check=batch_get_finds_nothing,
        ),
    ),
    "/protomesh.document.v1.DocumentService/ListDocuments": (
        Case(
            lambda i: doc_pb.ListDocumentsRequest(page_size=1000, view=doc_pb.DOCUMENT_VIEW_FULL),
            grpc.StatusCode.OK,
            {
                "DocumentService_ListDocuments": Rest(
                    query={"pageSize": 1000, "view": "DOCUMENT_VIEW_FULL"}
                )
            },
            check=only_intruder_documents,
        ),
    ),
    "/protomesh.document.v1.DocumentService/UpdateDocument": (
        _not_found(
            _update_document,
            {
                "DocumentService_UpdateDocument": Rest(
                    DOC, {"updateMask": "title"}, {"title": "pwned"}
                )
            },
        ),
    ),
    "/protomesh.document.v1.DocumentService/DeleteDocument": (
        _not_found(
            lambda i: doc_pb.DeleteDocumentRequest(name=i["doc"]),
            {"DocumentService_DeleteDocument": Rest(DOC)},
        ),
    ),
    "/protomesh.document.v1.DocumentService/BatchCreateDocuments": (
        Case(
            lambda i: [
                doc_pb.BatchCreateDocumentsRequest(
                    document=owner_document_request(i).document,
                    document_id=i["doc_id"],
                    request_id=i["doc_request"],
                )
            ],
            grpc.StatusCode.OK,
            {
                "DocumentService_BatchCreateDocuments": Rest(
                    body=[
                        {
                            "document": DOCUMENT_BODY,
                            "documentId": "{doc_id}",
                            "requestId": "{doc_request}",
                        }
                    ]
                )
            },
            fresh_intruder=True,
            check=a_new_batch_document,
        ),
    ),
    "/protomesh.document.v1.DocumentService/WatchChanges": (
        Case(
            lambda i: doc_pb.WatchChangesRequest(after_sequence=0),
            grpc.StatusCode.OK,
            {"DocumentService_WatchChanges": Rest(query={"afterSequence": 0})},
            until="documents",
            check=only_intruder_changes,
        ),
    ),
    # SearchService
    "/protomesh.search.v1.SearchService/Search": (
        *(
            Case(
                _search(mode),
                grpc.StatusCode.OK,
                _search_rest(mode),
                check=only_intruder_search_results,
            )
            for mode in SEARCH_MODES
        ),
        Case(
            lambda i: search_pb.SearchRequest(
                query=i["word"], filter=search_pb.SearchFilter(document_names=[i["doc"]])
            ),
            grpc.StatusCode.OK,
            {
                "SearchService_Search": Rest(
                    body={"query": "{word}", "filter": {"documentNames": ["{doc}"]}}
                ),
                "SearchService_Search_1": Rest(
                    query={"query": "{word}", "filter.documentNames": "{doc}"}
                ),
            },
            same_as_never=True,
            check=only_intruder_search_results,
        ),
    ),
    "/protomesh.search.v1.SearchService/SearchStream": tuple(
        Case(
            _search(mode),
            grpc.StatusCode.OK,
            {
                "SearchService_SearchStream": Rest(
                    body={
                        "query": "{word}",
                        "mode": search_pb.SearchMode.Name(mode),
                        "pageSize": 50,
                    }
                )
            },
            check=only_intruder_search_results,
        )
        for mode in SEARCH_MODES
    ),
    "/protomesh.search.v1.SearchService/GetIndexStatus": (
        Case(
            lambda i: search_pb.GetIndexStatusRequest(),
            grpc.StatusCode.OK,
            {"SearchService_GetIndexStatus": Rest()},
            check=index_counts_only_the_intruder,
        ),
    ),
    "/protomesh.search.v1.SearchService/ReindexTenant": (
        Case(
            lambda i: search_pb.ReindexTenantRequest(),
            grpc.StatusCode.OK,
            {"SearchService_ReindexTenant": Rest(body={})},
            check=reindex_queues_only_the_intruder,
        ),
    ),
    # TaskService
    "/protomesh.task.v1.TaskService/CreateTask": (
        Case(
            owner_task_request,
            grpc.StatusCode.OK,
            {
                "TaskService_CreateTask": Rest(
                    query={"requestId": "{task_request}"},
                    body={"type": "noop", "contextId": "{context}", "input": {"progress_steps": 2}},
                )
            },
            fresh_intruder=True,
            check=a_new_task_not_a_replay,
        ),
    ),
    "/protomesh.task.v1.TaskService/GetTask": (
        _not_found(
            lambda i: task_pb.GetTaskRequest(name=i["task"], history_length=1000),
            {"TaskService_GetTask": Rest(TASK, {"historyLength": 1000})},
        ),
    ),
    "/protomesh.task.v1.TaskService/ListTasks": (
        Case(
            lambda i: task_pb.ListTasksRequest(page_size=1000),
            grpc.StatusCode.OK,
            {"TaskService_ListTasks": Rest(query={"pageSize": 1000})},
            check=no_tasks,
        ),
        Case(
            lambda i: task_pb.ListTasksRequest(filter=f'context_id = "{i["context"]}"'),
            grpc.StatusCode.OK,
            {"TaskService_ListTasks": Rest(query={"filter": 'context_id = "{context}"'})},
            same_as_never=True,
            check=no_tasks,
        ),
    ),
    "/protomesh.task.v1.TaskService/CancelTask": (
        _not_found(
            lambda i: task_pb.CancelTaskRequest(name=i["task"]),
            {"TaskService_CancelTask": Rest(TASK, body={})},
        ),
    ),
    "/protomesh.task.v1.TaskService/SendTaskInput": (
        _not_found(
            _send_input,
            {"TaskService_SendTaskInput": Rest(TASK, body={"input": {"answer": "pwned"}})},
        ),
    ),
    "/protomesh.task.v1.TaskService/RetryTask": (
        _not_found(
            lambda i: task_pb.RetryTaskRequest(name=i["task"]),
            {"TaskService_RetryTask": Rest(TASK, body={})},
        ),
    ),
    "/protomesh.task.v1.TaskService/DeleteTask": (
        _not_found(
            lambda i: task_pb.DeleteTaskRequest(name=i["task"]),
            {"TaskService_DeleteTask": Rest(TASK)},
        ),
    ),
    "/protomesh.task.v1.TaskService/WatchTask": (
        _not_found(
            lambda i: task_pb.WatchTaskRequest(name=i["task"]),
            {"TaskService_WatchTask": Rest(TASK)},
        ),
    ),
    # CostService
    "/protomesh.cost.v1.CostService/ListPrices": (
        Case(
            lambda i: cost_pb.ListPricesRequest(include_history=True, page_size=1000),
            grpc.StatusCode.OK,
            {"CostService_ListPrices": Rest(query={"includeHistory": True, "pageSize": 1000})},
        ),
    ),
    "/protomesh.cost.v1.CostService/GetPrice": (
        Case(
            lambda i: cost_pb.GetPriceRequest(name="prices/gpt-4o-mini"),
            grpc.StatusCode.OK,
            {"CostService_GetPrice": Rest({"name": "gpt-4o-mini"})},
        ),
    ),
    # The price book is shared by every tenant: only operators (`cost:admin`) change it.
    "/protomesh.cost.v1.CostService/UpsertPrice": (
        Case(
            lambda i: cost_pb.UpsertPriceRequest(
                price=cost_pb.Price(model="gpt-4o-mini", input_micros_per_mtok=1)
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            {
                "CostService_UpsertPrice": Rest(
                    body={"model": "gpt-4o-mini", "inputMicrosPerMtok": 1}
                )
            },
        ),
    ),
    "/protomesh.cost.v1.CostService/RecordUsage": (
        Case(
            owner_usage_request,
            grpc.StatusCode.OK,
            {"CostService_RecordUsage": Rest(body=USAGE_BODY)},
            fresh_intruder=True,
            check=a_new_usage_record,
        ),
    ),
    "/protomesh.cost.v1.CostService/ListUsage": (
        Case(
            lambda i: cost_pb.ListUsageRequest(page_size=1000),
            grpc.StatusCode.OK,
            {"CostService_ListUsage": Rest(query={"pageSize": 1000})},
            check=only_intruder_usage,
        ),
    ),
    "/protomesh.cost.v1.CostService/EstimateCost": (
        Case(
            lambda i: cost_pb.EstimateCostRequest(
                model="gpt-4o-mini", input_tokens=1000, max_output_tokens=100
            ),
            grpc.StatusCode.OK,
            {
                "CostService_EstimateCost": Rest(
                    body={"model": "gpt-4o-mini", "inputTokens": 1000, "maxOutputTokens": 100}
                )
            },
        ),
    ),
    "/protomesh.cost.v1.CostService/CreateBudget": (
        Case(
            owner_budget_request,
            grpc.StatusCode.OK,
            {
                "CostService_CreateBudget": Rest(
                    query={"budgetId": "{budget_id}", "requestId": "{budget_request}"},
                    body={
                        "displayName": "{budget_display}",
                        "scopeKind": "SCOPE_KIND_TENANT",
                        "period": "PERIOD_MONTH",
                        "hardLimitMicros": 10**12,
                        "alertThresholdsPercent": [50],
                    },
                )
            },
            fresh_intruder=True,
            check=a_new_budget_without_spend,
        ),
    ),
    "/protomesh.cost.v1.CostService/GetBudget": (
        _not_found(
            lambda i: cost_pb.GetBudgetRequest(name=i["budget"]),
            {"CostService_GetBudget": Rest(BUDGET)},
        ),
    ),
    "/protomesh.cost.v1.CostService/ListBudgets": (
        Case(
            lambda i: cost_pb.ListBudgetsRequest(page_size=1000),
            grpc.StatusCode.OK,
            {"CostService_ListBudgets": Rest(query={"pageSize": 1000})},
            check=no_budgets,
        ),
    ),
    "/protomesh.cost.v1.CostService/UpdateBudget": (
        _not_found(
            _update_budget,
            {
                "CostService_UpdateBudget": Rest(
                    BUDGET, {"updateMask": "hardLimitMicros"}, {"hardLimitMicros": 1}
                )
            },
        ),
    ),
    "/protomesh.cost.v1.CostService/DeleteBudget": (
        _not_found(
            lambda i: cost_pb.DeleteBudgetRequest(name=i["budget"]),
            {"CostService_DeleteBudget": Rest(BUDGET)},
        ),
    ),
    "/protomesh.cost.v1.CostService/Reserve": (
        Case(
            owner_reserve_request,
            grpc.StatusCode.OK,
            {
                "CostService_Reserve": Rest(
                    body={
                        "amountMicros": 777_001,
                        "attribution": {"userId": "{user}", "task": "{task}"},
                        "ttl": "3600s",
                        "requestId": "{reservation_request}",
                    }
                )
            },
            fresh_intruder=True,
            check=a_new_reservation,
        ),
    ),
    "/protomesh.cost.v1.CostService/CommitReservation": (
        _not_found(
            lambda i: cost_pb.CommitReservationRequest(
                name=i["reservation"], usage=cost_pb.TokenUsage(model="gpt-4o-mini")
            ),
            {
                "CostService_CommitReservation": Rest(
                    RESERVATION, body={"usage": {"model": "gpt-4o-mini"}}
                )
            },
        ),
    ),
    "/protomesh.cost.v1.CostService/ReleaseReservation": (
        _not_found(
            lambda i: cost_pb.ReleaseReservationRequest(name=i["reservation"]),
            {"CostService_ReleaseReservation": Rest(RESERVATION, body={})},
        ),
    ),
    # A's request id in another tenant is that tenant's own charge, never A's replay,
    # and A's budgets are neither limits for it nor spent by it (the owner snapshot).
    "/protomesh.cost.v1.CostService/Charge": (
        Case(
            owner_charge_request,
            grpc.StatusCode.OK,
            {"CostService_Charge": Rest(body=CHARGE_BODY)},
            fresh_intruder=True,
            check=a_new_charge,
        ),
    ),
    "/protomesh.cost.v1.CostService/GetSpendReport": tuple(
        Case(
            _report(group_by),
            grpc.StatusCode.OK,
            {
                "CostService_GetSpendReport": Rest(
                    query={"groupBy": cost_pb.GroupBy.Name(group_by), **WHOLE_RANGE_QUERY}
                )
            },
            check=report_of_the_intruder_only,
        )
        for group_by in (cost_pb.GROUP_BY_MODEL, cost_pb.GROUP_BY_USER, cost_pb.GROUP_BY_TASK)
    ),
    "/protomesh.cost.v1.CostService/ExportSpend": (
        Case(
            _export,
            grpc.StatusCode.OK,
            {"CostService_ExportSpend": Rest(query=WHOLE_RANGE_QUERY)},
            check=export_of_the_intruder_only,
        ),
    ),
    "/protomesh.cost.v1.CostService/WatchSpend": (
        Case(
            lambda i: cost_pb.WatchSpendRequest(after_sequence=0),
            grpc.StatusCode.OK,
            {"CostService_WatchSpend": Rest(query={"afterSequence": 0})},
            until="usage",
            check=only_intruder_spend,
        ),
    ),
    "/protomesh.cost.v1.CostService/GetTenantTier": (
        _not_found(
            lambda i: cost_pb.GetTenantTierRequest(name=f"tenants/{i['tenant']}/tier"),
            {"CostService_GetTenantTier": Rest({"name": "{tenant}"})},
        ),
    ),
    # Tiers are set by operators (`cost:admin`), for any tenant; a tenant cannot.
    "/protomesh.cost.v1.CostService/UpdateTenantTier": (
        Case(
            lambda i: cost_pb.UpdateTenantTierRequest(
                tier=cost_pb.TenantTier(name=f"tenants/{i['tenant']}/tier", tier="free")
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            {"CostService_UpdateTenantTier": Rest({"name": "{tenant}"}, body={"tier": "free"})},
            same_as_never=True,
        ),
    ),
}


# -- calling: gRPC directly on the service's port, REST through the gateway ----


@dataclass(frozen=True)
class Outcome:
    """What one call answered."""

    status: str
    """The gRPC code name, or the HTTP status."""
    error: str
    """The error: gRPC details, or the REST error object (from the body, or from the
    stream's `error` event when the refusal came after the 200)."""
    payload: Any
    """The answer in proto3 JSON: an object, a list for streams, text for CSV."""
    text: str
    """Everything the caller received, for the leak check."""


def _marks(world: World, until: str) -> frozenset[str]:
    return {"documents": world.intruder_documents, "usage": world.intruder_usage_keys}.get(
        until, frozenset()
    )


async def call_grpc(world: World, path: str, request: Any, token: str, until: str) -> Outcome:
    method = grpc_methods()[path]
    service = SERVICE_KEYS[method.containing_service.full_name]
    response_class = GetMessageClass(method.output_type)
    raw_body = method.output_type.full_name == "google.api.HttpBody"
    marks = _marks(world, until)
    serializers = {
        "request_serializer": _serialize,
        "response_deserializer": response_class.FromString,
    }
    metadata = bearer(token)
    payload: Any
    async with world.cluster.channel(service) as channel:
        try:
            async with asyncio.timeout(CALL_SECONDS):
                if method.client_streaming:
                    call = channel.stream_unary(path, **serializers)
                    payload = _json(await call(iter(request), metadata=metadata))
                elif method.server_streaming:
                    stream = channel.unary_stream(path, **serializers)(request, metadata=metadata)
                    items: list[Any] = []
                    async for message in stream:
                        items.append(bytes(message.data).decode() if raw_body else _json(message))
                        if marks and any(mark in json.dumps(items[-1]) for mark in marks):
                            break
                    stream.cancel()
                    payload = "".join(items) if raw_body else items
                else:
                    call = channel.unary_unary(path, **serializers)
                    payload = _json(await call(request, metadata=metadata))
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            return Outcome(exc.code().name, details, None, details)
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return Outcome("OK", "", payload, text)


def _sent_grpc(request: Any) -> str:
    messages = request if isinstance(request, list) else [request]
    return " ".join(json_format.MessageToJson(m, ensure_ascii=False) for m in messages)


def _fill(value: Any, ids: Ids) -> Any:
    """`value` with the ids put into its `{placeholders}`."""
    if isinstance(value, str):
        return value.format_map(ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


def _query(query: Mapping[str, Any], ids: Ids) -> dict[str, str]:
    return {
        key: str(value).lower() if isinstance(value, bool) else _fill(str(value), ids)
        for key, value in query.items()
    }


@dataclass(frozen=True)
class RestCall:
    method: str
    url: str
    query: dict[str, str]
    content: bytes | None
    headers: dict[str, str]

    def sent(self) -> str:
        return f"{self.url} {json.dumps(self.query)} {(self.content or b'').decode()}"


def rest_call(
    operation: tuple[str, str, dict[str, Any]], rest: Rest, ids: Ids, token: str
) -> RestCall:
    verb, template, spec = operation
    method = grpc_methods()[spec["x-grpc-method"]]
    url = re.sub(
        r"\{(\w+)\}", lambda m: quote(_fill(rest.path[m.group(1)], ids), safe=""), template
    )
    headers = {"authorization": f"Bearer {token}"}
    content = None
    if method.client_streaming:
        lines = [json.dumps(_fill(item, ids)) for item in rest.body]
        content = "\n".join(lines).encode() + b"\n"
        headers["content-type"] = "application/x-ndjson"
    elif rest.body is not None:
        content = json.dumps(_fill(rest.body, ids)).encode()
        headers["content-type"] = "application/json"
    if method.server_streaming and method.output_type.full_name != "google.api.HttpBody":
        headers["accept"] = "text/event-stream"
    return RestCall(verb, url, _query(rest.query, ids), content, headers)


async def call_rest(world: World, call: RestCall, until: str) -> Outcome:
    marks = _marks(world, until)
    async with (
        httpx.AsyncClient(base_url=world.cluster.gateway, timeout=CALL_SECONDS) as client,
        asyncio.timeout(CALL_SECONDS),
        client.stream(
            call.method, call.url, params=call.query, content=call.content, headers=call.headers
        ) as response,
    ):
        status = str(response.status_code)
        if response.status_code >= 400:
            body = (await response.aread()).decode()
            return Outcome(status, json.dumps(json.loads(body)["error"]), None, body)
        kind = response.headers.get("content-type", "")
        if not kind.startswith("text/event-stream"):
            body = (await response.aread()).decode()
            payload = json.loads(body) if kind.startswith("application/json") else body
            return Outcome(status, "", payload, body)
        items: list[Any] = []
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            items.append(json.loads(line.removeprefix("data: ")))
            if "error" in items[-1]:
                error = items[-1]["error"]
                return Outcome(str(error["code"]), json.dumps(error), None, json.dumps(items))
            if marks and any(mark in line for mark in marks):
                break
    return Outcome(status, "", items, json.dumps(items, ensure_ascii=False))


# -- the checks ------------------------------------------------------------------


def assert_no_leak(world: World, outcome: Outcome, sent: str) -> None:
    """No string of A's came back that the caller did not send itself or could not
    build from what it sent (`documents/<id>` for an id it chose)."""
    known = {s for s in world.secrets if s in sent}
    leaked = sorted(
        s
        for s in world.secrets - known
        if s in outcome.text and not any(part in s for part in known)
    )
    assert not leaked, (leaked, outcome.text[:2000])


def normalized(outcome: Outcome, ids: Ids) -> tuple[str, str]:
    text = outcome.error or json.dumps(outcome.payload, sort_keys=True)
    for key, value in sorted(ids.items(), key=lambda item: -len(item[1])):
        text = text.replace(value, f"<{key}>")
    return outcome.status, text


async def assert_owner_unchanged(world: World) -> None:
    assert await owner_snapshot(world) == world.snapshot


GRPC_PARAMS = [
    pytest.param(path, index, id=f"{path.rsplit('.', 1)[-1]}#{index}")
    for path, cases in CASES.items()
    for index in range(len(cases))
]
REST_PARAMS = [
    pytest.param(path, index, operation_id, id=f"{operation_id}#{index}")
    for path, cases in CASES.items()
    for index, case in enumerate(cases)
    for operation_id in case.rest
]


@pytest.fixture(scope="module")
def operations(cluster: Cluster) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return openapi_operations(cluster)


def test_every_rpc_and_route_has_a_case(
    operations: dict[str, tuple[str, str, dict[str, Any]]],
) -> None:
    assert set(CASES) == set(grpc_methods()), "an RPC without a tenancy case (or a stale case)"
    covered = {
        operation_id: path
        for path, cases in CASES.items()
        for case in cases
        for operation_id in case.rest
    }
    assert set(covered) == set(operations), "a route without a tenancy case (or a stale case)"
    for operation_id, path in covered.items():
        assert operations[operation_id][2]["x-grpc-method"] == path, operation_id
    for path, cases in CASES.items():
        for case in cases:
            routes = [operations[operation_id][2]["x-grpc-method"] for operation_id in case.rest]
            assert routes, path
            assert set(routes) == {path}, path


@pytest.mark.parametrize(("path", "index"), GRPC_PARAMS)
async def test_another_tenant_over_grpc_sees_nothing_of_the_owner(
    world: World, path: str, index: int
) -> None:
    case = CASES[path][index]
    token = world.fresh_token() if case.fresh_intruder else world.intruder_token
    request = case.request(world.ids)

    outcome = await call_grpc(world, path, request, token, case.until)

    assert outcome.status == case.code.name, outcome
    assert_no_leak(world, outcome, _sent_grpc(request))
    if case.check is not None:
        case.check(world, outcome.payload)
    if case.same_as_never:
        twin = await call_grpc(world, path, case.request(world.never), token, case.until)
        assert normalized(outcome, world.ids) == normalized(twin, world.never)
    await assert_owner_unchanged(world)


@pytest.mark.parametrize(("path", "index", "operation_id"), REST_PARAMS)
async def test_another_tenant_through_the_gateway_sees_nothing_of_the_owner(
    world: World,
    operations: dict[str, tuple[str, str, dict[str, Any]]],
    path: str,
    index: int,
    operation_id: str,
) -> None:
    case = CASES[path][index]
    operation = operations[operation_id]
    rest = case.rest[operation_id]
    token = world.fresh_token() if case.fresh_intruder else world.intruder_token
    call = rest_call(operation, rest, world.ids, token)

    outcome = await call_rest(world, call, case.until)

    if case.code == grpc.StatusCode.OK:
        expected = next(code for code in operation[2]["responses"] if code.startswith("2"))
        assert outcome.status == expected, outcome
    else:
        assert outcome.status == str(HTTP_STATUS[case.code]), outcome
        assert json.loads(outcome.error)["status"] == case.code.name, outcome
    assert_no_leak(world, outcome, call.sent())
    if case.check is not None:
        case.check(world, outcome.payload)
    if case.same_as_never:
        twin = await call_rest(world, rest_call(operation, rest, world.never, token), case.until)
        assert normalized(outcome, world.ids) == normalized(twin, world.never)
    await assert_owner_unchanged(world)


@pytest.mark.parametrize(
    ("path", "method"), sorted(grpc_methods().items()), ids=lambda v: str(v).rsplit("/", 1)[-1]
)
async def test_every_rpc_refuses_every_attack_token_on_its_port(
    world: World, path: str, method: MethodDescriptor
) -> None:
    empty = GetMessageClass(method.input_type)()
    request = [empty] if method.client_streaming else empty
    for name, token in attack_tokens(world.cluster).items():
        outcome = await call_grpc(world, path, request, token, until="")
        assert outcome.status == "UNAUTHENTICATED", (name, outcome)
        assert "victim" not in outcome.text, (name, outcome)


async def _mcp_call(
    http: httpx.AsyncClient, tool: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    response = await call_mcp_tool(http, tool, arguments)
    assert response.status_code == 200, response.text
    return mcp_result(response)


async def test_mcp_tools_do_not_reach_another_tenants_data(world: World) -> None:
    async with httpx.AsyncClient(
        base_url=world.cluster.gateway,
        headers={"authorization": f"Bearer {world.intruder_token}"},
        timeout=CALL_SECONDS,
    ) as http:
        for tool, argument in (("get_document", "doc"), ("get_task", "task")):
            answers = [
                await _mcp_call(http, tool, {"name": ids[argument]})
                for ids in (world.ids, world.never)
            ]
            for answer in answers:
                assert answer["isError"], answer
                assert answer["content"][0]["text"].startswith("NOT_FOUND"), answer
            assert json.dumps(answers[0]).replace(world.ids[argument], "<name>") == json.dumps(
                answers[1]
            ).replace(world.never[argument], "<name>")
        listed = await _mcp_call(
            http, "list_documents", {"pageSize": 1000, "view": "DOCUMENT_VIEW_FULL"}
        )
        found = await _mcp_call(http, "search_documents", {"query": world.ids["word"]})

    only_intruder_documents(world, listed["structuredContent"])
    only_intruder_search_results(world, found["structuredContent"])
    for answer in (listed, found):
        assert_no_leak(world, Outcome("OK", "", answer, json.dumps(answer)), world.ids["word"])
    await assert_owner_unchanged(world)


async def test_a2a_does_not_reach_another_tenants_tasks(world: World) -> None:
    async def foreign(ids: Ids) -> list[tuple[int, str]]:
        task_id = ids["task_id"]
        message = {
            "message": {
                "messageId": uuid.uuid4().hex,
                "role": "ROLE_USER",
                "taskId": task_id,
                "parts": [{"text": "pwned"}],
            }
        }
        answers = [
            await http.get(f"/a2a/tasks/{task_id}", params={"historyLength": 100}),
            await http.post(f"/a2a/tasks/{task_id}:cancel"),
            await http.get(f"/a2a/tasks/{task_id}:subscribe"),
            await http.post("/a2a/message:send", json=message),
        ]
        return [(answer.status_code, answer.text.replace(task_id, "<task>")) for answer in answers]

    async with httpx.AsyncClient(
        base_url=world.cluster.gateway,
        headers={"authorization": f"Bearer {world.intruder_token}", "a2a-version": "1.0"},
        timeout=CALL_SECONDS,
    ) as http:
        owners, nevers = await foreign(world.ids), await foreign(world.never)
        listed = [
            await http.get("/a2a/tasks", params={"contextId": world.ids["context"]}),
            await http.get("/a2a/tasks"),
            await http.get(f"/a2a/{world.ids['tenant']}/tasks"),
        ]

    assert [status for status, _ in owners] == [404] * len(owners), owners
    assert owners == nevers
    for answer in listed:
        assert answer.status_code == 200, answer.text
        assert answer.json()["tasks"] == [], answer.text
        sent = f"{world.ids['context']} {world.ids['tenant']}"
        assert_no_leak(world, Outcome("200", "", answer.json(), answer.text), sent)
    await assert_owner_unchanged(world)

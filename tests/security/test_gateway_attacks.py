"""Attacks on the gateway from the outside, against the real processes.

Every route comes from the gateway's own /openapi.json. Forged and broken tokens,
missing tokens and tokens without the scope are refused on every route with the
right status and an AIP-193 body; hostile strings in every path parameter, query
parameter and body string field never cause a 5xx or return another tenant's
data; oversized, deeply nested, non-UTF-8, mistyped and out-of-range requests get
a clean 4xx. The tenant `victim`, which every attack token claims, holds a
document whose marker must never appear in any answer."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from gateway.config import GatewayConfig
from gateway.jsonmap import MAX_JSON_DEPTH
from tests.cluster import Cluster
from tests.security.attacks import (
    INJECTIONS,
    assert_aip193,
    attack_tokens,
    call_mcp_tool,
    mcp_result,
    openapi_operations,
)

Operation = tuple[str, str, dict[str, Any]]
VICTIM = "victim"
CONCURRENCY = 8
STREAM_READ_SECONDS = 0.5
MAX_BODY_BYTES = GatewayConfig().max_body_bytes
PROBE_ID = "sec-probe"
"""Every path parameter's value: the attacker's own document and budget carry it,
so hostile updates reach real rows."""
# Bodies and queries that are valid apart from the field under attack, so hostile
# values get past the required-field checks to the code that stores and queries.
VALID_BODIES: dict[str, Any] = {
    "DocumentService_CreateDocument": {"title": "t", "content": "c"},
    "DocumentService_UpdateDocument": {"title": "t"},
    "DocumentService_BatchCreateDocuments": {"document": {"content": "c"}},
    "SearchService_Search": {"query": "q"},
    "SearchService_SearchStream": {"query": "q"},
    "TaskService_CreateTask": {"type": "noop"},
    "TaskService_SendTaskInput": {"input": {}},
    "CostService_RecordUsage": {
        "usage": {"model": "gpt-4o-mini", "inputTokens": 1},
        "idempotencyKey": "k1",
    },
    "CostService_EstimateCost": {"model": "gpt-4o-mini"},
    "CostService_CreateBudget": {
        "scopeKind": "SCOPE_KIND_USER",
        "scopeId": "u",
        "period": "PERIOD_DAY",
        "hardLimitMicros": 1000,
    },
    "CostService_UpdateBudget": {"displayName": "d"},
    "CostService_Reserve": {"amountMicros": 1},
    "CostService_CommitReservation": {"usage": {"model": "gpt-4o-mini"}},
    "CostService_Charge": {
        "usage": {"model": "gpt-4o-mini", "inputTokens": 1},
        "requestId": "k1",
    },
}
VALID_QUERIES: dict[str, dict[str, str]] = {"SearchService_Search_1": {"query": "q"}}


@dataclass(frozen=True)
class Target:
    cluster: Cluster
    operations: dict[str, Operation]
    attacker: str
    """A valid token (every scope) of the attacking tenant."""
    victim: str
    """A valid token of the victim tenant."""
    victim_document: str
    marker: str
    """A string of the victim's data that no attacker may ever read."""

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        # `send` rebuilds each response from the bytes it read: ask for them uncompressed.
        headers = {"accept-encoding": "identity"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(base_url=self.cluster.gateway, headers=headers, timeout=30)


@pytest.fixture(scope="module")
async def target(cluster: Cluster) -> Target:
    marker = "crownjewel" + uuid.uuid4().hex[:12]
    victim = cluster.token(VICTIM)
    attacker = cluster.token("attacker-" + uuid.uuid4().hex[:8])
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as http:
        created = await http.post(
            "/v1/documents",
            json={"title": marker, "content": f"The {marker} is kept here."},
            headers={"authorization": f"Bearer {victim}"},
        )
        assert created.status_code == 201, created.text
        as_attacker = {"authorization": f"Bearer {attacker}"}
        own = await http.post(
            "/v1/documents",
            params={"documentId": PROBE_ID},
            json={"title": "attacker", "content": "the attacker's own note"},
            headers=as_attacker,
        )
        assert own.status_code == 201, own.text
        budget = await http.post(
            "/v1/budgets",
            params={"budgetId": PROBE_ID},
            json=VALID_BODIES["CostService_CreateBudget"],
            headers=as_attacker,
        )
        assert budget.status_code == 201, budget.text
    return Target(
        cluster, openapi_operations(cluster), attacker, victim, created.json()["name"], marker
    )


# -- sending requests ---------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    params: dict[str, str]
    content: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        return f"{self.method} {self.url} {self.params} {(self.content or b'')[:200]!r}"


async def send(http: httpx.AsyncClient, request: Request, **extra_headers: str) -> httpx.Response:
    """The answer, with the body read for at most STREAM_READ_SECONDS once headers
    arrived (a valid watch would stream forever)."""
    headers = {**dict(request.headers), **extra_headers}
    async with http.stream(
        request.method, request.url, params=request.params, content=request.content, headers=headers
    ) as response:
        body = bytearray()
        try:
            async with asyncio.timeout(STREAM_READ_SECONDS):
                async for chunk in response.aiter_bytes():
                    body += chunk
        except TimeoutError:
            pass
        return httpx.Response(response.status_code, headers=response.headers, content=bytes(body))


async def send_all(
    http: httpx.AsyncClient, requests: list[Request], **extra_headers: str
) -> list[tuple[Request, httpx.Response]]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(request: Request) -> tuple[Request, httpx.Response]:
        async with gate:
            return request, await send(http, request, **extra_headers)

    return await asyncio.gather(*(one(request) for request in requests))


def _media_types(operation: Operation) -> set[str]:
    return set(operation[2].get("requestBody", {}).get("content", {}))


def _streams_events(operation: Operation) -> bool:
    ok = next(v for k, v in operation[2]["responses"].items() if k.startswith("2"))
    return "text/event-stream" in ok.get("content", {})


def request_for(
    operation_id: str,
    operation: Operation,
    path_value: str = PROBE_ID,
    params: dict[str, str] | None = None,
    body: Any = None,
) -> Request:
    """A request to the operation: every path parameter set to `path_value`, the
    operation's valid body (or `body`) in its media type."""
    verb, template, _ = operation
    url = template
    for name in _path_parameters(operation):
        url = url.replace("{" + name + "}", quote(path_value, safe=""))
    query = {**VALID_QUERIES.get(operation_id, {}), **(params or {})}
    headers: list[tuple[str, str]] = []
    if _streams_events(operation):
        headers.append(("accept", "text/event-stream"))
    kinds = _media_types(operation)
    if not kinds:
        return Request(verb, url, query, None, tuple(headers))
    value = VALID_BODIES.get(operation_id, {}) if body is None else body
    if "application/x-ndjson" in kinds:
        headers.append(("content-type", "application/x-ndjson"))
        return Request(verb, url, query, json.dumps(value).encode() + b"\n", tuple(headers))
    headers.append(("content-type", "application/json"))
    return Request(verb, url, query, json.dumps(value).encode(), tuple(headers))


def _path_parameters(operation: Operation) -> list[str]:
    return [p["name"] for p in operation[2].get("parameters", []) if p.get("in") == "path"]


def _query_parameters(operation: Operation) -> list[dict[str, Any]]:
    return [p for p in operation[2].get("parameters", []) if p.get("in") == "query"]


def assert_clean(target: Target, request: Request, response: httpx.Response) -> None:
    """No server error, any error in the AIP-193 shape, none of the victim's data."""
    where = (request.describe(), response.status_code, response.text[:300])
    assert response.status_code < 500, where
    if response.status_code >= 400:
        assert_aip193(response, response.status_code)
    assert target.marker not in response.text, where


# -- tokens ---------------------------------------------------------------------


def _client_streams(target: Target) -> dict[str, Operation]:
    return {
        op_id: operation
        for op_id, operation in target.operations.items()
        if "application/x-ndjson" in _media_types(operation)
    }


def _server_streams(target: Target) -> dict[str, Operation]:
    return {
        op_id: operation
        for op_id, operation in target.operations.items()
        if _streams_events(operation)
    }


def _every_route(target: Target) -> list[Request]:
    """A request to every route but the streams, whose refusals race (see the two
    `test_a_..._stream_refused_...` cases below)."""
    streams = {**_client_streams(target), **_server_streams(target)}
    return [
        request_for(op_id, operation)
        for op_id, operation in target.operations.items()
        if op_id not in streams
    ]


async def test_every_attack_token_is_refused_on_every_route(target: Target) -> None:
    async with target.client() as http:
        for name, token in attack_tokens(target.cluster).items():
            answers = await send_all(http, _every_route(target), authorization=f"Bearer {token}")
            for request, response in answers:
                where = (name, request.describe(), response.text[:300])
                assert response.status_code == 401, where
                error = assert_aip193(response, 401)
                assert error["status"] == "UNAUTHENTICATED", where
                assert response.headers["www-authenticate"].startswith("Bearer"), where
                assert target.marker not in response.text, where


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Basic dmljdGltOnB3", "Token abc", "Bearer a b", "bearer\tx"],
)
async def test_a_missing_or_malformed_authorization_is_refused_on_every_route(
    target: Target, authorization: str
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    async with target.client() as http:
        for request, response in await send_all(http, _every_route(target), **headers):
            error = assert_aip193(response, 401)
            assert error["status"] == "UNAUTHENTICATED", request.describe()
            assert response.headers["www-authenticate"].startswith("Bearer"), request.describe()


async def test_a_token_without_the_scope_is_forbidden_on_every_route(target: Target) -> None:
    token = target.cluster.token("attacker-unscoped", scopes="profile:read")
    async with target.client(token) as http:
        for request, response in await send_all(http, _every_route(target)):
            error = assert_aip193(response, 403)
            assert error["status"] == "PERMISSION_DENIED", request.describe()


async def assert_streams_refused(target: Target, streams: dict[str, Operation]) -> None:
    """Every attack token → 401 with the challenge, no scope → 403, on each stream,
    with many calls at once (the races need the service to answer while the gateway
    is still sending the body or waiting for the first message)."""
    assert streams, "no stream left to test"
    unscoped = target.cluster.token("attacker-unscoped", scopes="profile:read")
    tokens = [*attack_tokens(target.cluster).values(), unscoped]
    requests = [request_for(op_id, operation) for op_id, operation in streams.items()]
    async with target.client() as http:
        for token in tokens:
            expected = 403 if token == unscoped else 401
            answers = await send_all(http, requests * 10, authorization=f"Bearer {token}")
            for request, response in answers:
                assert response.status_code == expected, (request.describe(), response.text)
                assert_aip193(response, expected)
                if expected == 401:
                    assert response.headers["www-authenticate"].startswith("Bearer")
                assert target.marker not in response.text


async def test_a_client_stream_refused_by_its_service_is_401_or_403_never_500(
    target: Target,
) -> None:
    await assert_streams_refused(target, _client_streams(target))


async def test_a_server_stream_refused_by_its_service_is_401_or_403_not_200(
    target: Target,
) -> None:
    await assert_streams_refused(target, _server_streams(target))


async def test_a2a_and_mcp_refuse_attack_tokens(target: Target) -> None:
    tokens = {**attack_tokens(target.cluster), "none": ""}
    async with target.client() as http:
        for name, token in tokens.items():
            headers = {"a2a-version": "1.0"}
            if token:
                headers["authorization"] = f"Bearer {token}"
            for url in ("/a2a/tasks", f"/a2a/{VICTIM}/tasks"):
                refused = await http.get(url, headers=headers)
                assert refused.status_code == 401, (name, url, refused.text)
                assert refused.headers["www-authenticate"].startswith("Bearer"), name
                assert target.marker not in refused.text, name
            mcp = await call_mcp_tool(http, "list_documents", {}, headers)
            assert target.marker not in mcp.text, name
            if not token:
                assert mcp.status_code == 401, mcp.text
                assert mcp.headers["www-authenticate"].startswith("Bearer"), name
                continue
            # A present token is checked by the services: the tool call fails with
            # their status (documented in gateway/mcp_http.py).
            assert mcp.status_code == 200, (name, mcp.text)
            result = mcp_result(mcp)
            assert result["isError"], (name, result)
            assert result["content"][0]["text"].startswith("UNAUTHENTICATED"), (name, result)


# -- hostile strings --------------------------------------------------------------


def _schema(operations_doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = operations_doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def string_slots(
    document: dict[str, Any], schema: dict[str, Any], depth: int = 0
) -> Iterator[tuple[tuple[str, ...], str]]:
    """Where a string can go in a JSON body of `schema`: (path, kind), kind being
    `value`, `map-value`, `map-key` or `item`."""
    schema = _schema(document, schema)
    if depth > 3:
        return
    for name, field in schema.get("properties", {}).items():
        resolved = _schema(document, field)
        kind = resolved.get("type")
        if kind == "string":
            yield (name,), "value"
        elif (
            kind == "array" and _schema(document, resolved.get("items", {})).get("type") == "string"
        ):
            yield (name,), "item"
        elif kind == "object" and resolved.get("additionalProperties"):
            yield (name,), "map-value"
            yield (name,), "map-key"
        elif kind == "object" or "properties" in resolved:
            for path, slot in string_slots(document, resolved, depth + 1):
                yield (name, *path), slot


def with_string(body: Any, path: tuple[str, ...], kind: str, hostile: str) -> Any:
    body = copy.deepcopy(body) if isinstance(body, dict) else {}
    holder = body
    for part in path[:-1]:
        child = holder.get(part)
        holder[part] = child if isinstance(child, dict) else {}
        holder = holder[part]
    holder[path[-1]] = {
        "value": hostile,
        "map-value": {"k": hostile},
        "map-key": {hostile: "v"},
        "item": [hostile],
    }[kind]
    return body


def hostile_requests(target: Target, document: dict[str, Any], hostile: str) -> list[Request]:
    requests: list[Request] = []
    for op_id, operation in target.operations.items():
        if _path_parameters(operation):
            requests.append(request_for(op_id, operation, path_value=hostile))
        for parameter in _query_parameters(operation):
            requests.append(request_for(op_id, operation, params={parameter["name"]: hostile}))
        content = operation[2].get("requestBody", {}).get("content", {})
        for media in content.values():
            base = VALID_BODIES.get(op_id, {})
            for path, kind in string_slots(document, media["schema"]):
                body = with_string(base, path, kind, hostile)
                requests.append(request_for(op_id, operation, body=body))
    return requests


@pytest.fixture(scope="module")
def openapi_document(cluster: Cluster) -> dict[str, Any]:
    document: dict[str, Any] = (
        httpx.get(f"{cluster.gateway}/openapi.json", timeout=10).raise_for_status().json()
    )
    return document


@pytest.mark.parametrize("hostile", INJECTIONS)
async def test_hostile_strings_in_every_parameter_and_field_get_no_5xx_and_no_data(
    target: Target, openapi_document: dict[str, Any], hostile: str
) -> None:
    requests = hostile_requests(target, openapi_document, hostile)
    async with target.client(target.attacker) as http:
        answers = await send_all(http, requests)
    for request, response in answers:
        assert_clean(target, request, response)
    await assert_victim_intact(target)


async def assert_victim_intact(target: Target) -> None:
    async with target.client(target.victim) as http:
        document = await http.get(f"/v1/{target.victim_document}")
        listed = await http.get("/v1/documents")
    assert document.status_code == 200, document.text
    assert document.json()["title"] == target.marker
    assert [d["name"] for d in listed.json()["documents"]] == [target.victim_document]


async def test_a_nul_character_is_invalid_argument_not_a_server_error(target: Target) -> None:
    """U+0000 cannot be stored by PostgreSQL: every service answers INVALID_ARGUMENT."""
    requests = [
        ("POST", "/v1/documents", {"title": "a\u0000b", "content": "c"}),
        ("POST", "/v1/documents", {"content": "c", "metadata": {"k": "a\u0000b"}}),
        ("POST", "/v1/tasks", {"type": "noop", "contextId": "a\u0000b"}),
        ("POST", "/v1/search", {"query": "a\u0000b"}),
        (
            "POST",
            "/v1/usage",
            {
                "usage": {"model": "gpt-4o-mini"},
                "idempotencyKey": "nul-1",
                "attribution": {"userId": "a\u0000b"},
            },
        ),
    ]
    async with target.client(target.attacker) as http:
        for method, url, body in requests:
            response = await http.request(method, url, json=body)
            error = assert_aip193(response, 400)
            assert error["status"] == "INVALID_ARGUMENT", (url, body)
        listed = await http.get("/v1/tasks", params={"filter": 'context_id = "a\u0000b"'})
        assert_aip193(listed, 400)


# -- malformed requests -------------------------------------------------------------


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_an_oversized_body_is_413(target: Target) -> None:
    big = json.dumps({"title": "t", "content": "x" * (MAX_BODY_BYTES + 1)}).encode()
    line = json.dumps({"document": {"content": "x" * (MAX_BODY_BYTES + 1)}}).encode() + b"\n"
    json_type = {"content-type": "application/json"}
    async with target.client(target.attacker) as http:
        declared = await http.post("/v1/documents", content=big, headers=json_type)
        chunked = await http.post("/v1/documents", content=_chunks(big), headers=json_type)
        ndjson = await http.post(
            "/v1/documents:batchCreate",
            content=_chunks(line),
            headers={"content-type": "application/x-ndjson"},
        )
        # Under the gateway's limit but over the service's content limit (1 MiB).
        large = await http.post("/v1/documents", json={"content": "x" * (2 * 1024 * 1024)})
    for response in (declared, chunked, ndjson):
        assert assert_aip193(response, 413)["status"] == "OUT_OF_RANGE"
    assert assert_aip193(large, 400)["status"] == "INVALID_ARGUMENT"


def _nested(levels: int, leaf: str = "1") -> dict[str, bytes]:
    return {
        "array": b"[" * levels + leaf.encode() + b"]" * levels,
        "object": b'{"a":' * levels + leaf.encode() + b"}" * levels,
        "struct": (
            b'{"content":"c","metadata":' + b'{"a":' * levels + leaf.encode() + b"}" * levels + b"}"
        ),
    }


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 10_000, 100_000])
async def test_deeply_nested_json_is_400(target: Target, levels: int) -> None:
    async with target.client(target.attacker) as http:
        for shape, body in _nested(levels).items():
            for url, kind in (
                ("/v1/documents", "application/json"),
                ("/v1/search", "application/json"),
                ("/v1/documents:batchCreate", "application/x-ndjson"),
            ):
                response = await http.post(
                    url, content=body + b"\n", headers={"content-type": kind}
                )
                error = assert_aip193(response, 400)
                assert error["status"] == "INVALID_ARGUMENT", (shape, url)


INVALID_UTF8 = [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"a\x80b"]


@pytest.mark.parametrize("sequence", INVALID_UTF8, ids=lambda b: b.hex())
async def test_invalid_utf8_is_400(target: Target, sequence: bytes) -> None:
    body = b'{"title":"' + sequence + b'","content":"c"}'
    escaped = quote(sequence)
    async with target.client(target.attacker) as http:
        answers = [
            await http.post(
                "/v1/documents", content=body, headers={"content-type": "application/json"}
            ),
            await http.post(
                "/v1/documents:batchCreate",
                content=b'{"document":' + body + b"}\n",
                headers={"content-type": "application/x-ndjson"},
            ),
            await http.get(f"/v1/documents?filter={escaped}"),
            await http.get(f"/v1/search?query={escaped}"),
        ]
        in_path = await http.get(f"/v1/documents/{escaped}")
    for response in answers:
        assert assert_aip193(response, 400)["status"] == "INVALID_ARGUMENT", response.request.url
    # A path that does not decode matches no route.
    assert in_path.status_code in (400, 404), in_path.text
    assert_aip193(in_path, in_path.status_code)


@pytest.mark.parametrize(
    ("content_type", "document", "query"),
    [
        ("text/plain", b'{"content":"c"}', b'{"query":"q"}'),
        ("application/xml", b'{"content":"c"}', b'{"query":"q"}'),
        ("multipart/form-data; boundary=x", b'{"content":"c"}', b'{"query":"q"}'),
        ("application/jsonp", b'{"content":"c"}', b'{"query":"q"}'),
        # No type or a form type: read as JSON only when the body is JSON (as
        # grpc-gateway does, for `curl -d`), so these bodies are 415.
        ("", b"content=c", b"query=q"),
        ("application/x-www-form-urlencoded", b"content=c", b"query=q"),
    ],
)
async def test_a_wrong_content_type_is_415(
    target: Target, content_type: str, document: bytes, query: bytes
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with target.client(target.attacker) as http:
        answers = [
            await http.post("/v1/documents", content=document, headers=headers),
            await http.post("/v1/search", content=query, headers=headers),
        ]
        if content_type:  # NDJSON bodies without a type are read as NDJSON
            answers.append(
                await http.post(
                    "/v1/documents:batchCreate",
                    content=b'{"document":{"content":"c"}}\n',
                    headers=headers,
                )
            )
    for response in answers:
        assert assert_aip193(response, 415)["status"] == "INVALID_ARGUMENT", response.request.url


def _page_size_routes(target: Target) -> list[tuple[str, Operation]]:
    return [
        (op_id, operation)
        for op_id, operation in target.operations.items()
        if any(p["name"] == "pageSize" for p in _query_parameters(operation))
    ]


@pytest.mark.parametrize("page_size", [10**9, 2**31, -1, -(2**31) - 1, 10**30])
async def test_a_huge_or_negative_page_size_is_400(target: Target, page_size: int) -> None:
    routes = _page_size_routes(target)
    assert len(routes) >= 6, routes
    requests = [
        request_for(op_id, operation, params={"pageSize": str(page_size)})
        for op_id, operation in routes
    ]
    async with target.client(target.attacker) as http:
        for request, response in await send_all(http, requests):
            error = assert_aip193(response, 400)
            assert error["status"] == "INVALID_ARGUMENT", request.describe()
    async with target.client(target.attacker) as http:
        body = await http.post("/v1/search", json={"query": "q", "pageSize": page_size})
    assert_aip193(body, 400)


OUT_OF_RANGE_INTEGERS = [
    "-1",
    "2147483648",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999",
    "1" + "0" * 5000,
    "1e400",
    "NaN",
    "0x10",
]


async def test_out_of_range_integers_in_every_query_parameter_get_no_5xx(
    target: Target,
) -> None:
    requests = [
        request_for(op_id, operation, params={parameter["name"]: value})
        for op_id, operation in target.operations.items()
        for parameter in _query_parameters(operation)
        if parameter.get("schema", {}).get("type") == "integer"
        or parameter.get("schema", {}).get("format") in ("int64", "uint64")
        for value in OUT_OF_RANGE_INTEGERS
    ]
    assert len(requests) > 50, len(requests)
    async with target.client(target.attacker) as http:
        # A short deadline: a valid but future `minSequence` waits for the index until it.
        answers = await send_all(http, requests, **{"grpc-timeout": "1S"})
    for request, response in answers:
        if response.status_code == 504 and "minSequence" in request.params:
            continue  # the read-your-writes wait ran out: DEADLINE_EXCEEDED, as documented
        assert_clean(target, request, response)


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (
            "/v1/usage",
            {
                "usage": {"model": "gpt-4o-mini", "inputTokens": "99999999999999999999"},
                "idempotencyKey": "k",
            },
        ),
        (
            "/v1/usage",
            {"usage": {"model": "gpt-4o-mini", "inputTokens": -5}, "idempotencyKey": "k"},
        ),
        (
            "/v1/usage",
            {"usage": {"model": "gpt-4o-mini", "outputTokens": 100_000_001}, "idempotencyKey": "k"},
        ),
        ("/v1/reservations", {"amountMicros": 10**13}),
        ("/v1/reservations", {"amountMicros": -1}),
        ("/v1/reservations", {"amountMicros": 1, "ttl": "315360000s"}),
        ("/v1/tasks", {"type": "noop", "priority": 10}),
        ("/v1/tasks", {"type": "noop", "priority": 2**31}),
        ("/v1/tasks", {"type": "noop", "costLimitMicros": "-1"}),
        ("/v1/search", {"query": "q", "rrfK": -1}),
        ("/v1/search", {"query": "q", "bm25Weight": 1e308}),
        ("/v1/search", {"query": "q", "minSequence": "-1"}),
        (
            "/v1/budgets",
            {"scopeKind": "SCOPE_KIND_TENANT", "period": "PERIOD_DAY", "hardLimitMicros": "-1"},
        ),
        ("/v1/budgets", {"scopeKind": 99, "period": "PERIOD_DAY", "hardLimitMicros": 1}),
        ("/v1/usage:estimate", {"model": "gpt-4o-mini", "inputTokens": "1" + "0" * 5000}),
    ],
)
async def test_out_of_range_numbers_in_bodies_are_400(
    target: Target, url: str, body: dict[str, Any]
) -> None:
    async with target.client(target.attacker) as http:
        response = await http.post(url, json=body)
    assert assert_aip193(response, 400)["status"] == "INVALID_ARGUMENT", response.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/documents/%zz",
        "/v1/documents/%",
        "/v1/documents/%a",
        "/v1/documents/%ff",
        "/v1/documents/%00",
        "/v1/documents/a%2Fb",
        "/v1/documents/%2e%2e",
        "/v1/tasks/%E0%A4%A:watch",
        "/v1/tasks/%ZZ:cancel",
        "/v1/budgets/%C0%AF",
        "/v1/tenants/%ff/tier",
        "/v1/documents%",
    ],
)
async def test_invalid_percent_encoding_in_a_path_is_a_clean_4xx(target: Target, path: str) -> None:
    async with target.client(target.attacker) as http:
        for method in ("GET", "DELETE", "POST", "PATCH"):
            response = await http.request(
                method, path, content=b"{}", headers={"content-type": "application/json"}
            )
            assert 400 <= response.status_code < 500, (method, path, response.text)
            assert_aip193(response, response.status_code)
            assert target.marker not in response.text


async def test_too_many_query_parameters_is_400(target: Target) -> None:
    query = "&".join(f"names=documents/d{i}" for i in range(300))
    async with target.client(target.attacker) as http:
        response = await http.get(f"/v1/documents:batchGet?{query}")
    assert assert_aip193(response, 400)["status"] == "INVALID_ARGUMENT"


async def test_unknown_routes_are_404_and_wrong_methods_405(target: Target) -> None:
    async with target.client(target.attacker) as http:
        unknown = await http.get("/v1/secrets")
        wrong = await http.put("/v1/documents", json={})
    assert_aip193(unknown, 404)
    assert_aip193(wrong, 405)
    assert "GET" in wrong.headers["allow"]

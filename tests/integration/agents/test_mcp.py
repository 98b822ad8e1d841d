"""MCP through the official `mcp` client: over Streamable HTTP at the gateway's
`/mcp` and over stdio with `protomesh mcp`, against the whole system."""

from __future__ import annotations

import asyncio
import importlib.metadata
import itertools
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import jsonschema
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from gateway.app import create_app
from gateway.config import GatewayConfig
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from tests.cluster import Cluster
from tests.conftest import bearer
from tests.integration.gateway.harness import live_server

EXPECTED_TOOLS = {
    "create_document",
    "get_document",
    "list_documents",
    "search_documents",
    "get_task",
    "ask",
}


@asynccontextmanager
async def over_http(cluster: Cluster, token: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    async with (
        http,
        Client(streamable_http_client(f"{cluster.gateway}/mcp", http_client=http)) as client,
    ):
        yield client


@asynccontextmanager
async def over_stdio(cluster: Cluster, token: str) -> AsyncIterator[Client]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROTOMESH_")}
    env.update(cluster.settings.to_env())
    env["PROTOMESH_TOKEN"] = token
    env["PROTOMESH_LOG_LEVEL"] = "warning"
    parameters = StdioServerParameters(
        command=sys.executable, args=["-m", "cli.main", "mcp"], env=env
    )
    async with Client(stdio_client(parameters)) as client:
        yield client


async def indexed(cluster: Cluster, tenant: str, query: str) -> None:
    async with cluster.channel("search") as channel:
        stub = search_grpc.SearchServiceStub(channel)
        for _ in range(200):
            found = await stub.Search(
                search_pb.SearchRequest(query=query, mode=search_pb.SEARCH_MODE_KEYWORD),
                metadata=bearer(cluster.token(tenant)),
            )
            if found.results:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{query!r} was never indexed for {tenant}")


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    value: dict[str, Any] = result.structured_content
    return value


def error_text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(block.text for block in result.content)


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_tools_are_listed_with_valid_schemas_and_hints(
    cluster: Cluster, transport: str
) -> None:
    connect = over_http if transport == "http" else over_stdio
    async with connect(cluster, cluster.token("mcp-list")) as client:
        listed = await client.list_tools()

    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == EXPECTED_TOOLS
    for tool in tools.values():
        assert tool.description, tool.name
        assert tool.input_schema["type"] == "object", tool.name
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.output_schema is not None
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
    assert tools["search_documents"].annotations.read_only_hint is True
    assert tools["create_document"].annotations.read_only_hint is False
    assert "query" in tools["search_documents"].input_schema["properties"]


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_every_tool_works_for_its_tenant(cluster: Cluster, transport: str) -> None:
    tenant = f"mcp-{transport}-" + uuid.uuid4().hex[:8]
    connect = over_http if transport == "http" else over_stdio
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with connect(cluster, cluster.token(tenant)) as client:
        created = structured(
            await client.call_tool(
                "create_document",
                {
                    "document": {
                        "title": "Lighthouse keeping",
                        "content": "The lighthouse lamp is lit at dusk and trimmed every four hours.",
                        "labels": {"topic": "sea"},
                    }
                },
            )
        )
        name = created["name"]
        got = structured(await client.call_tool("get_document", {"name": name}))
        listed = structured(
            await client.call_tool("list_documents", {"filter": 'labels.topic = "sea"'})
        )
        await indexed(cluster, tenant, "lighthouse lamp")
        found = structured(
            await client.call_tool(
                "search_documents", {"query": "when is the lamp lit", "mode": "SEARCH_MODE_KEYWORD"}
            )
        )
        answer = structured(
            await client.call_tool(
                "ask",
                {"question": "When is the lighthouse lamp lit?"},
                progress_callback=on_progress,
            )
        )
        task = structured(await client.call_tool("get_task", {"name": answer["task"]}))

    assert got["title"] == "Lighthouse keeping"
    assert [d["name"] for d in listed["documents"]] == [name]
    assert found["results"][0]["documentName"] == name
    assert answer["state"] == "COMPLETED"
    assert "dusk" in answer["answer"]
    assert answer["citations"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert progress, "ask reports progress"


async def test_bad_arguments_and_foreign_names_are_tool_errors(cluster: Cluster) -> None:
    owner = "mcp-owner-" + uuid.uuid4().hex[:8]
    async with over_http(cluster, cluster.token(owner)) as client:
        created = structured(
            await client.call_tool(
                "create_document", {"document": {"title": "private", "content": "owner only"}}
            )
        )
        ask = structured(await client.call_tool("ask", {"question": "anything?", "top_k": 1}))

    async with over_http(cluster, cluster.token("mcp-intruder-" + uuid.uuid4().hex[:8])) as client:
        foreign_document = error_text(
            await client.call_tool("get_document", {"name": created["name"]})
        )
        foreign_task = error_text(await client.call_tool("get_task", {"name": ask["task"]}))
        unknown_field = error_text(await client.call_tool("get_document", {"nmae": "documents/x"}))
        invalid_value = error_text(await client.call_tool("list_documents", {"pageSize": 100000}))
        empty_query = error_text(await client.call_tool("search_documents", {"query": ""}))
        bad_ask = error_text(await client.call_tool("ask", {"question": "", "top_k": 99}))

    assert foreign_document.startswith("NOT_FOUND"), foreign_document
    assert foreign_task.startswith("NOT_FOUND"), foreign_task
    assert "nmae" in unknown_field
    assert invalid_value.startswith("INVALID_ARGUMENT"), invalid_value
    assert "page_size" in invalid_value, invalid_value
    assert empty_query.startswith("INVALID_ARGUMENT"), empty_query
    assert "query" in empty_query, empty_query
    assert "question" in bad_ask


async def test_no_token_is_401_with_the_resource_metadata_hint(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.gateway) as http:
        refused = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        metadata = await http.get("/.well-known/oauth-protected-resource")

    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert "resource_metadata=" in challenge
    assert metadata.status_code == 200
    assert metadata.json()["resource"].endswith("/mcp")


async def test_a_bad_token_is_an_unauthenticated_tool_error(cluster: Cluster) -> None:
    async with over_http(cluster, "not-a-jwt") as client:
        refused = error_text(await client.call_tool("list_documents", {}))

    assert refused.startswith("UNAUTHENTICATED"), refused


def property_names(schema: Any) -> set[str]:
    """Every property name anywhere in a JSON Schema."""
    names: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names.update(property_names(value))
    elif isinstance(schema, list):
        for value in schema:
            names.update(property_names(value))
    return names


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_server_info_names_the_package_version_and_schemas_are_camel_case(
    cluster: Cluster, transport: str
) -> None:
    connect = over_http if transport == "http" else over_stdio
    async with connect(cluster, cluster.token("mcp-info")) as client:
        info = client.server_info
        listed = await client.list_tools()

    assert info is not None
    assert info.name == "protomesh"
    assert info.version == importlib.metadata.version("protomesh")
    for tool in listed.tools:
        snake = sorted(name for name in property_names(tool.input_schema) if "_" in name)
        assert not snake, (tool.name, snake)
    ask = next(tool for tool in listed.tools if tool.name == "ask")
    assert set(ask.input_schema["properties"]) == {"question", "topK", "labels", "timeoutSeconds"}


async def test_ask_progress_only_increases_and_ends_at_the_total(cluster: Cluster) -> None:
    tenant = "mcp-progress-" + uuid.uuid4().hex[:8]
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with over_http(cluster, cluster.token(tenant)) as client:
        await client.call_tool(
            "create_document",
            {"document": {"title": "Tides", "content": "High tide comes twice a day at the pier."}},
        )
        await indexed(cluster, tenant, "tide pier")
        answer = structured(
            await client.call_tool(
                "ask",
                {"question": "How often is high tide?", "topK": 3, "timeoutSeconds": 60},
                progress_callback=on_progress,
            )
        )

    assert answer["state"] == "COMPLETED"
    values = [done for done, _, _ in progress]
    assert len(values) >= 2, progress
    assert all(b > a for a, b in itertools.pairwise(values)), progress
    assert values[-1] == 100.0
    assert {total for _, total, _ in progress} == {100.0}


async def test_ask_still_takes_the_deprecated_snake_case_arguments_but_not_both(
    cluster: Cluster,
) -> None:
    async with over_http(cluster, cluster.token("mcp-snake-" + uuid.uuid4().hex[:8])) as client:
        old = structured(
            await client.call_tool(
                "ask", {"question": "anything?", "top_k": 2, "timeout_seconds": 60}
            )
        )
        both = error_text(
            await client.call_tool("ask", {"question": "anything?", "top_k": 2, "topK": 3})
        )
        out_of_range = error_text(await client.call_tool("ask", {"question": "x", "topK": 21}))
        bad_timeout = error_text(
            await client.call_tool("ask", {"question": "x", "timeout_seconds": 0})
        )

    assert old["state"] == "COMPLETED"
    assert both.startswith("invalid arguments: topK"), both
    assert out_of_range.startswith("invalid arguments: topK"), out_of_range
    assert bad_timeout.startswith("invalid arguments: timeoutSeconds"), bad_timeout


def http_url(value: object) -> bool:
    parts = httpx.URL(str(value))
    return parts.scheme in ("http", "https") and bool(parts.host)


async def test_protected_resource_metadata_names_authorization_servers_by_url(
    cluster: Cluster,
) -> None:
    issuer = "https://id.example.com/realms/protomesh"
    async with (
        live_server(create_app(GatewayConfig(jwt_issuer=issuer), {})) as with_url,
        live_server(create_app(GatewayConfig(jwt_issuer="protomesh-dev"), {})) as with_name,
        httpx.AsyncClient() as http,
    ):
        named = (await http.get(f"{with_url}/.well-known/oauth-protected-resource")).json()
        unnamed = (await http.get(f"{with_name}/.well-known/oauth-protected-resource")).json()
        system = (await http.get(f"{cluster.gateway}/.well-known/oauth-protected-resource")).json()

    assert named["authorization_servers"] == [issuer]
    assert named["resource"] == f"{with_url}/mcp"
    assert "authorization_servers" not in unnamed
    for metadata in (named, unnamed, system):
        assert http_url(metadata["resource"]), metadata
        assert all(http_url(server) for server in metadata.get("authorization_servers", [])), (
            metadata
        )

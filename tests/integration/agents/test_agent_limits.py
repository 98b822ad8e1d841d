"""The agent endpoints refuse bodies past the gateway's limit with 413 (the MCP
and A2A SDKs read bodies whole, with no limit of their own), after the token
check, and pass smaller bodies on untouched."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.cluster import Cluster

MCP_ACCEPT = "application/json, text/event-stream"


def padded(limit: int, over: bool) -> bytes:
    """A JSON-RPC GetTask whose ignored `pad` field brings it just over or under
    `limit` bytes."""
    base = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "none", "pad": ""}}
    size = len(json.dumps(base).encode())
    base["params"]["pad"] = "x" * (limit - size + (1 if over else -16))  # type: ignore[index]
    return json.dumps(base).encode()


async def chunked(body: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("path", ["/a2a/jsonrpc", "/a2a/message:send", "/mcp"])
async def test_a_body_past_the_limit_is_413_declared_or_streamed(
    cluster: Cluster, path: str
) -> None:
    limit = cluster.settings.gateway.max_body_bytes
    headers = {
        "Authorization": f"Bearer {cluster.token('limits')}",
        "A2A-Version": "1.0",
        "Accept": MCP_ACCEPT,
        "Content-Type": "application/json",
    }
    body = padded(limit, over=True)
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as http:
        declared = await http.post(path, content=body, headers=headers)
        streamed = await http.post(path, content=chunked(body), headers=headers)
        anonymous = await http.post(
            path, content=body, headers={"Content-Type": "application/json"}
        )

    assert declared.status_code == 413, declared.text
    assert declared.json()["error"]["status"] == "OUT_OF_RANGE"
    assert str(limit) in declared.json()["error"]["message"]
    assert streamed.status_code == 413, streamed.text
    assert anonymous.status_code == 401, anonymous.text


async def test_a_body_under_the_limit_reaches_the_sdk(cluster: Cluster) -> None:
    limit = cluster.settings.gateway.max_body_bytes
    headers = {
        "Authorization": f"Bearer {cluster.token('limits')}",
        "A2A-Version": "1.0",
        "Content-Type": "application/json",
    }
    body = padded(limit, over=False)
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=60) as http:
        declared = await http.post("/a2a/jsonrpc", content=body, headers=headers)
        streamed = await http.post("/a2a/jsonrpc", content=chunked(body), headers=headers)

    for response in (declared, streamed):
        assert response.status_code == 200, response.text
        assert response.json()["error"]["code"] == -32001  # TaskNotFound: the SDK read it all

"""What the security suite attacks with, shared by its test modules: forged and
broken tokens, hostile strings, and the list of RPCs and REST routes taken from
the contracts themselves (so a new RPC or route cannot escape the suite)."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.descriptor import MethodDescriptor

from protomesh.cost.v1 import cost_service_pb2
from protomesh.document.v1 import document_service_pb2
from protomesh.search.v1 import search_service_pb2
from protomesh.task.v1 import task_service_pb2
from services.platform.identity import KEY_FILE, load_key, public_jwk
from tests.cluster import Cluster

SERVER_ERRORS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
INJECTIONS = [
    "'; DROP TABLE document.documents; --",
    '" OR 1=1 --',
    "x' OR tenant_id <> '",
    "$1); SELECT pg_sleep(5); --",
    "\\x00\\u0000",
    "nul\x00byte",  # a real U+0000: PostgreSQL text and jsonb cannot hold it
    'labels.a = "x" OR 1 = 1',
    "%' UNION SELECT * FROM pg_shadow --",
    "🙂" * 50,
]
# The service keys of Settings.address_of, by the full name of their gRPC service.
SERVICE_KEYS = {
    "protomesh.document.v1.DocumentService": "document",
    "protomesh.search.v1.SearchService": "search",
    "protomesh.task.v1.TaskService": "task",
    "protomesh.cost.v1.CostService": "cost",
}
_PROTO_MODULES = (document_service_pb2, search_service_pb2, task_service_pb2, cost_service_pb2)


def attack_tokens(cluster: Cluster) -> dict[str, str]:
    """Tokens that must all be refused, by what is wrong with them. Each claims the
    tenant `victim` with read scopes, so one accepted by mistake would read its data."""
    settings = cluster.settings
    key = load_key(settings.data_dir / KEY_FILE)
    kid = public_jwk(key)["kid"]
    now = int(time.time())
    base = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "mallory",
        "tenant_id": "victim",
        "scope": "documents:read search:read tasks:read cost:read",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }

    def sign(claims: dict[str, Any], signer: Any = key, header_kid: str = kid) -> str:
        return jwt.encode(claims, signer, algorithm="ES256", headers={"kid": header_kid})

    good = sign(base)
    head, body, signature = good.split(".")
    return {
        "expired": sign({**base, "exp": now - 3600}),
        "not-yet-valid": sign({**base, "nbf": now + 3600}),
        "wrong-audience": sign({**base, "aud": "other"}),
        "wrong-issuer": sign({**base, "iss": "other"}),
        "no-tenant": sign({k: v for k, v in base.items() if k != "tenant_id"}),
        "alg-none": jwt.encode(base, None, algorithm="none"),
        "foreign-key": sign(base, ec.generate_private_key(ec.SECP256R1())),
        "unknown-kid": sign(base, header_kid="nope"),
        "tampered": f"{head}.{body[:-4]}AAAA.{signature}",
        "garbage": "not-a-jwt",
    }


def grpc_methods() -> dict[str, MethodDescriptor]:
    """Every RPC of the protomesh services, by its gRPC path (`/pkg.Service/Method`)."""
    methods: dict[str, MethodDescriptor] = {}
    for module in _PROTO_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods[f"/{service.full_name}/{method.name}"] = method
    return methods


def openapi_operations(cluster: Cluster) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Every operation the gateway documents, by operationId: (HTTP method, OpenAPI
    path, operation), read from the running gateway's own /openapi.json."""
    document = httpx.get(f"{cluster.gateway}/openapi.json", timeout=10).raise_for_status().json()
    operations: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for path, item in document["paths"].items():
        for verb, operation in item.items():
            if verb in {"get", "put", "post", "patch", "delete"}:
                operations[operation["operationId"]] = (verb.upper(), path, operation)
    return operations


def assert_aip193(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is the gateway's error shape with this HTTP status; returns `error`."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == status, error
    assert isinstance(error["message"], str), error
    assert isinstance(error["status"], str), error
    assert error["status"].isupper(), error
    assert isinstance(error.get("details", []), list), error
    return error


async def call_mcp_tool(
    http: httpx.AsyncClient,
    tool: str,
    arguments: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST /mcp tools/call (stateless Streamable HTTP), as an agent host would."""
    return await http.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        },
        headers={**(headers or {}), "accept": "application/json, text/event-stream"},
    )


def mcp_result(response: httpx.Response) -> dict[str, Any]:
    """The tools/call result carried by a 200 answer's one SSE data line."""
    (data,) = [line for line in response.text.splitlines() if line.startswith("data: ")]
    result: dict[str, Any] = json.loads(data.removeprefix("data: "))["result"]
    return result

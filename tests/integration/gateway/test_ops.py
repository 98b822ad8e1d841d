"""Operational endpoints and middleware: /healthz, /readyz, /metrics,
/openapi.json, CORS, gzip; and `python -m gateway` with 2 uvicorn workers."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time

import httpx
from openapi_spec_validator import validate

from tests.integration.gateway.harness import REPO, SERVICE, Backend, Compiled


async def test_healthz_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_backend_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["backends"] == {SERVICE: "SERVING"}


async def test_metrics_count_requests_by_route_method_and_code(client: httpx.AsyncClient) -> None:
    await client.get("/v1/things/m1")
    await client.get("/v1/nowhere")
    text = (await client.get("/metrics")).text
    assert (
        'protomesh_gateway_requests_total{code="200",method="GET",route="/v1/{name=things/*}"}'
        in text
    )
    assert 'protomesh_gateway_requests_total{code="404",method="GET",route="unmatched"}' in text
    assert "protomesh_gateway_request_duration_seconds_bucket" in text


async def test_openapi_is_served_and_valid(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    validate(spec)
    assert spec["openapi"] == "3.1.0"


async def test_cors_preflight_allows_configured_origin_only(client: httpx.AsyncClient) -> None:
    headers = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization,if-match",
    }
    allowed = await client.options("/v1/things/a", headers=headers)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    denied = await client.options(
        "/v1/things/a", headers={**headers, "Origin": "https://evil.example"}
    )
    assert denied.status_code == 400
    simple = await client.get("/v1/things/a", headers={"Origin": "https://app.example"})
    assert "x-request-id" in simple.headers["access-control-expose-headers"]


async def test_large_json_responses_are_gzipped_when_accepted(client: httpx.AsyncClient) -> None:
    words = "&".join(f"tags={'w' * 50}{i}" for i in range(40))
    response = await client.get(f"/v1/things?{words}", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["echo"]["tags"]) == 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_python_m_gateway_serves_with_two_workers(
    compiled: Compiled, backend: Backend
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(compiled.out_dir), str(REPO)]),
        "PROTOMESH_GATEWAY_PROTO_MODULES": "gatewaytest.v1.gatewaytest_pb2",
        "PROTOMESH_GATEWAY_BACKENDS": f"{SERVICE}={backend.address}",
        "PROTOMESH_GATEWAY_DESCRIPTOR_SET": str(compiled.descriptor_set),
        "PROTOMESH_GATEWAY_PORT": str(port),
        "PROTOMESH_GATEWAY_WORKERS": "2",
        "PROTOMESH_LOG_LEVEL": "warning",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as live:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if (await live.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "gateway did not become ready"
                await asyncio.sleep(0.1)
            responses = await asyncio.gather(*(live.get(f"/v1/things/w{i}") for i in range(40)))
            assert {r.status_code for r in responses} == {200}
            assert responses[7].json()["name"] == "things/w7"
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

"""The gateway over HTTPS, and tokens refused over plain HTTP where TLS is
required (gateway/tls.py): a request carrying `Authorization` whose scheme is
not https gets 403 TLS_REQUIRED and is never forwarded; a proxy is believed
about the scheme only when it is listed in `forwarded_allow_ips`."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from services.platform.config import TlsSettings
from services.platform.tls import https_verification
from tests.integration.gateway.harness import (
    SERVICE,
    Backend,
    Compiled,
    asgi_client,
    gateway_config,
    live_server,
    make_app,
)
from tests.pki import Pki, make_pki

TOKEN = {"authorization": "Bearer any-token"}
NOWHERE = "127.0.0.1:1"  # a backend that cannot be reached: a forwarded call would be a 503


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def trusting_ca(pki: Pki) -> ssl.SSLContext:
    context = https_verification(TlsSettings(ca=str(pki.ca)))
    assert isinstance(context, ssl.SSLContext)
    return context


def refused_for_plaintext(response: httpx.Response) -> bool:
    error = response.json()["error"]
    return (
        response.status_code == 403
        and error["status"] == "PERMISSION_DENIED"
        and error["details"][0]["reason"] == "TLS_REQUIRED"
        and "HTTPS" in error["message"]
    )


async def test_a_token_over_plain_http_is_refused_and_not_forwarded(compiled: Compiled) -> None:
    app = create_app(gateway_config(compiled, require_tls=True), {SERVICE: NOWHERE})
    async with asgi_client(app) as http:
        response = await http.get("/v1/things/abc", headers=TOKEN)
        assert refused_for_plaintext(response), response.text
        # Without credentials the request goes on (and finds the backend down).
        assert (await http.get("/v1/things/abc")).status_code == 503
        assert (await http.get("/healthz")).status_code == 200


async def test_a_token_over_https_passes(compiled: Compiled, backend: Backend) -> None:
    app = make_app(compiled, backend, require_tls=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://gateway"
    ) as http:
        response = await http.get("/v1/things/abc", headers=TOKEN)
    assert response.status_code == 200, response.text


async def test_without_require_tls_plain_http_carries_tokens(
    compiled: Compiled, backend: Backend
) -> None:
    """The dev default (no TLS configured): nothing is refused."""
    async with asgi_client(make_app(compiled, backend)) as http:
        assert (await http.get("/v1/things/abc", headers=TOKEN)).status_code == 200


@pytest.fixture
async def behind_a_proxy(compiled: Compiled, backend: Backend) -> AsyncIterator[str]:
    """A plain-HTTP gateway whose TLS ends at a proxy on 127.0.0.1 (trusted)."""
    app = make_app(compiled, backend, require_tls=True)
    async with live_server(app, proxy_headers=True, forwarded_allow_ips=["127.0.0.1"]) as url:
        yield url


async def test_a_trusted_proxy_that_terminated_tls_is_believed(behind_a_proxy: str) -> None:
    async with httpx.AsyncClient(base_url=behind_a_proxy) as http:
        https = await http.get("/v1/things/a", headers={**TOKEN, "x-forwarded-proto": "https"})
        assert https.status_code == 200, https.text
        http_hop = await http.get("/v1/things/a", headers={**TOKEN, "x-forwarded-proto": "http"})
        assert refused_for_plaintext(http_hop)
        assert refused_for_plaintext(await http.get("/v1/things/a", headers=TOKEN))


async def test_an_untrusted_client_cannot_claim_https(compiled: Compiled, backend: Backend) -> None:
    app = make_app(compiled, backend, require_tls=True)
    async with (
        live_server(app, proxy_headers=False) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        claimed = await http.get("/v1/things/a", headers={**TOKEN, "x-forwarded-proto": "https"})
    assert refused_for_plaintext(claimed)


@pytest.fixture
async def https_gateway(pki: Pki, compiled: Compiled, backend: Backend) -> AsyncIterator[str]:
    """The gateway as `python -m gateway` serves it with a certificate (its
    `uvicorn_options`), trusting a proxy on 127.0.0.1."""
    config = gateway_config(
        compiled,
        tls_certfile=str(pki.server.cert),
        tls_keyfile=str(pki.server.key),
        forwarded_allow_ips=("127.0.0.1",),
    )
    assert config.tokens_need_tls
    options = {k: v for k, v in config.uvicorn_options().items() if k not in ("host", "port")}
    async with live_server(create_app(config, {SERVICE: backend.address}), **options) as url:
        yield url


async def test_the_gateway_serves_https_verified_with_the_ca(
    https_gateway: str, trusting_ca: ssl.SSLContext
) -> None:
    assert https_gateway.startswith("https://")
    async with httpx.AsyncClient(base_url=https_gateway, verify=trusting_ca) as http:
        assert (await http.get("/healthz")).status_code == 200
        thing = await http.get("/v1/things/abc", headers=TOKEN)
        assert thing.status_code == 200
        assert thing.json()["name"] == "things/abc"
        # A proxy that took the token over plain HTTP says so: refused even over TLS.
        relayed = await http.get("/v1/things/abc", headers={**TOKEN, "x-forwarded-proto": "http"})
        assert refused_for_plaintext(relayed)


async def test_https_with_another_ca_or_plain_http_gets_nothing(
    pki: Pki, https_gateway: str
) -> None:
    other = https_verification(TlsSettings(ca=str(pki.other_ca)))
    async with httpx.AsyncClient(base_url=https_gateway, verify=other) as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get("/v1/things/abc", headers=TOKEN)
    plain = https_gateway.replace("https://", "http://")
    async with httpx.AsyncClient(base_url=plain) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get("/v1/things/abc", headers=TOKEN)

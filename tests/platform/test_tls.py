"""TLS on every hop between real servers: a gRPC server configured with TLS serves
TLS only (mutual under `require`), the platform's Dialer verifies it, the search
service reads the documents service over mTLS, and the gateway serves HTTPS in
front of them. Each way to get it wrong — another CA, an expired certificate, no
client certificate under `require`, plaintext — is refused in the handshake (or
before anything starts) with an error that says so, and no RPC reaches a handler."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cli.launcher import free_ports, grpc_serving
from gateway.app import create_app
from gateway.config import GatewayConfig
from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.document.feed import WatchOptions
from services.document.service import make_spec as document_spec
from services.platform.catalog import descriptor
from services.platform.channels import Dialer
from services.platform.config import Settings
from services.platform.server import ServiceServer
from services.platform.tls import TlsError, TlsMaterials, https_verification
from services.search.embedders import HashingEmbedder
from services.search.service import make_spec as search_spec
from tests.conftest import Mint, bearer, running
from tests.integration.gateway.harness import live_server
from tests.integration.search.conftest import FAST_INDEXER, fresh_database
from tests.pki import Pki, make_pki

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def mutual(pki: Pki, settings: Settings) -> Settings:
    """Settings of a process under mutual TLS: the server certificate, presented
    as its client certificate too."""
    return pki.settings(settings, client_auth="require")


@pytest.fixture(scope="module")
async def documents(mutual: Settings) -> AsyncIterator[ServiceServer]:
    """DocumentService on 127.0.0.1, mutual TLS."""
    async with running(document_spec(WatchOptions(heartbeat_seconds=0.3)), mutual) as (server, _):
        yield server


@pytest.fixture
def auth(mint: Mint) -> Metadata:
    return bearer(mint("t-" + uuid.uuid4().hex[:12]))


def dialer(pki: Pki, cert: str = "", key: str = "", ca: str = "") -> Dialer:
    """A Dialer from exactly these files, unchecked (so a test can present an
    expired certificate, as a client whose certificate lapsed while it ran)."""

    def read(path: str) -> bytes | None:
        return open(path, "rb").read() if path else None

    return Dialer(tls=TlsMaterials(read(cert), read(key), read(ca or str(pki.ca))))


async def create(channel: grpc.aio.Channel, auth: Metadata, doc_id: str) -> pb.Document:
    document: pb.Document = await pb_grpc.DocumentServiceStub(channel).CreateDocument(
        pb.CreateDocumentRequest(document_id=doc_id, document=pb.Document(content="over tls")),
        metadata=auth,
        timeout=5,
    )
    return document


async def refused(dial: Dialer, server: ServiceServer, auth: Metadata) -> grpc.aio.AioRpcError:
    """Tries to create a document through `dial`; the error, after checking with
    a good client that nothing was created."""
    doc_id = "d-" + uuid.uuid4().hex[:8]
    async with dial.open(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await create(channel, auth, doc_id)
    good = Dialer.from_settings(server.settings)
    async with good.open(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await pb_grpc.DocumentServiceStub(channel).GetDocument(
                pb.GetDocumentRequest(name=f"documents/{doc_id}"), metadata=auth, timeout=5
            )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND, "the refused call was served"
    return caught.value


# --- served over TLS -----------------------------------------------------------------


async def test_a_document_round_trip_over_tls(pki: Pki, settings: Settings, auth: Metadata) -> None:
    one_way = pki.settings(settings)  # TLS, no client certificate asked for
    async with running(document_spec(), one_way) as (_server, channel):
        created = await create(channel, auth, "over-tls")
        fetched = await pb_grpc.DocumentServiceStub(channel).GetDocument(
            pb.GetDocumentRequest(name=created.name), metadata=auth
        )
        assert fetched.content == "over tls"
        # A client with only the CA (no certificate of its own) is enough here.
        async with dialer(pki).open(f"127.0.0.1:{_server.port}") as ca_only:
            await create(ca_only, auth, "ca-only")


async def test_mutual_tls_between_services_and_https_through_the_gateway(
    pki: Pki, mutual: Settings, mint: Mint
) -> None:
    """REST over HTTPS → gateway → DocumentService (mTLS); the search indexer reads
    the change feed and fetches the documents over mTLS; the search goes gateway →
    SearchService (mTLS) and finds the document it waited for (min_sequence)."""
    local = dataclasses.replace(
        mutual, database_url=await fresh_database(mutual.database_url, "tls_it")
    )
    async with running(document_spec(WatchOptions(heartbeat_seconds=0.3)), local) as (docs, _):
        searching = dataclasses.replace(local, document_address=f"127.0.0.1:{docs.port}")
        spec = search_spec(HashingEmbedder, FAST_INDEXER, run_indexer=True)
        async with running(spec, searching) as (search, _):
            routed = dataclasses.replace(searching, search_address=f"127.0.0.1:{search.port}")
            config = GatewayConfig.from_settings(routed)
            app = create_app(config)
            async with live_server(app, **_https(config)) as url:
                assert url.startswith("https://")
                headers = {"authorization": f"Bearer {mint('t-' + uuid.uuid4().hex[:12])}"}
                verify = https_verification(routed.tls)
                async with httpx.AsyncClient(base_url=url, verify=verify, headers=headers) as http:
                    created = await http.post(
                        "/v1/documents",
                        json={"title": "Kestrels", "content": "Kestrels hover over motorways."},
                    )
                    assert created.status_code == 201, created.text
                    found = await http.post(
                        "/v1/search",
                        json={
                            "query": "kestrels hover",
                            "min_sequence": created.json()["sequence"],
                        },
                    )
                    assert found.status_code == 200, found.text
                    results = found.json()["results"]
                    assert [r["documentName"] for r in results] == [created.json()["name"]]
            await app.state.backends.close()


def _https(config: GatewayConfig) -> dict[str, object]:
    options = config.uvicorn_options()
    return {k: options[k] for k in ("ssl_certfile", "ssl_keyfile")}


async def test_replicas_on_one_machine_are_dialled_as_one_ipv4_target(
    mutual: Settings, documents: ServiceServer, auth: Metadata
) -> None:
    """`protomesh up --replicas N --tls`: clients dial `ipv4:host:p1,host:p2` and
    check each replica's certificate against the first address's host."""
    async with running(document_spec(), mutual) as (second, _):
        target = f"ipv4:127.0.0.1:{documents.port},127.0.0.1:{second.port}"
        async with Dialer.from_settings(mutual).open(target, [descriptor("document")]) as channel:
            for i in range(4):
                await create(channel, auth, f"replica-{i}")


async def test_plaintext_is_refused_on_a_tls_port(documents: ServiceServer, auth: Metadata) -> None:
    error = await refused(Dialer(), documents, auth)
    assert error.code() == grpc.StatusCode.UNAVAILABLE


# --- each way to get it wrong ----------------------------------------------------------


async def test_a_server_certificate_from_another_ca_is_refused(
    pki: Pki, documents: ServiceServer, auth: Metadata
) -> None:
    error = await refused(
        dialer(pki, str(pki.client.cert), str(pki.client.key), str(pki.other_ca)),
        documents,
        auth,
    )
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in error.details()
    assert "unable to get local issuer certificate" in error.details()


async def test_a_client_certificate_from_another_ca_is_refused_under_require(
    pki: Pki, documents: ServiceServer, auth: Metadata
) -> None:
    stranger = dialer(pki, str(pki.other_server.cert), str(pki.other_server.key))
    error = await refused(stranger, documents, auth)
    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_without_a_certificate_is_refused_under_require(
    pki: Pki, mutual: Settings, documents: ServiceServer, auth: Metadata
) -> None:
    error = await refused(dialer(pki), documents, auth)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    # Our own clients say so before dialling.
    no_certificate = dataclasses.replace(mutual.tls, cert="", key="")
    with pytest.raises(TlsError, match="require: this process has no certificate to present"):
        Dialer.from_settings(dataclasses.replace(mutual, tls=no_certificate))


async def test_an_expired_client_certificate_is_refused_under_require(
    pki: Pki, mutual: Settings, documents: ServiceServer, auth: Metadata
) -> None:
    lapsed = dialer(pki, str(pki.expired_client.cert), str(pki.expired_client.key))
    error = await refused(lapsed, documents, auth)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    expired = dataclasses.replace(
        mutual.tls, cert=str(pki.expired_client.cert), key=str(pki.expired_client.key)
    )
    with pytest.raises(TlsError, match="expired on"):
        Dialer.from_settings(dataclasses.replace(mutual, tls=expired))


async def test_a_server_with_an_expired_certificate_does_not_start(
    pki: Pki, settings: Settings
) -> None:
    (port,) = free_ports(1)
    expired = pki.settings(settings, pki.expired_server)
    server = ServiceServer(document_spec(), expired, port=port)
    with pytest.raises(TlsError, match=r"PROTOMESH_TLS_CERT=.*expired on"):
        await server.start()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


async def test_a_server_certificate_that_expired_while_serving_is_refused(pki: Pki) -> None:
    """A server started before its certificate expired: clients refuse it."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    key, cert = pki.expired_server.key.read_bytes(), pki.expired_server.cert.read_bytes()
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    await server.start()
    try:
        async with dialer(pki).probe(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "certificate has expired" in caught.value.details()
    finally:
        await server.stop(0)


# --- probes ----------------------------------------------------------------------------


async def test_the_health_port_serves_only_health_in_plaintext(
    pki: Pki, mutual: Settings, auth: Metadata
) -> None:
    (health_port,) = free_ports(1)
    probed = dataclasses.replace(mutual, health_port=health_port)
    async with running(document_spec(), probed) as (server, _):
        address = f"127.0.0.1:{health_port}"
        assert await grpc_serving(address)  # plaintext, like the kubelet's gRPC probe
        async with grpc.aio.insecure_channel(address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await create(channel, auth, "via-health-port")
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
        # The service's own port still speaks TLS only; its health follows it.
        assert not await grpc_serving(f"127.0.0.1:{server.port}")
        assert await grpc_serving(f"127.0.0.1:{server.port}", Dialer.from_settings(probed))

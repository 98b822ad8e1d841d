"""TLS settings are checked before anything is bound or dialled, and the dev CA
that `protomesh up --tls` makes covers what it must (services/platform/tls.py)."""

from __future__ import annotations

import dataclasses
import datetime
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from cli.launcher import dev_tls_names, with_dev_tls
from gateway.config import GatewayConfig
from services.platform.channels import Dialer
from services.platform.config import Settings, TlsSettings
from services.platform.tls import (
    TlsError,
    TlsMaterials,
    create_authority,
    ensure_dev_certificates,
    https_verification,
    issue,
    load,
)
from tests.pki import LOCAL_NAMES, Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls(pki: Pki, **fields: str) -> TlsSettings:
    values = {"cert": str(pki.server.cert), "key": str(pki.server.key), "ca": str(pki.ca)}
    return TlsSettings(**{**values, **fields})


def test_the_tls_section_reads_its_variables() -> None:
    settings = Settings.from_env(
        {
            "PROTOMESH_TLS_CERT": "/c.pem",
            "PROTOMESH_TLS_KEY": "/k.pem",
            "PROTOMESH_TLS_CA": "/ca.pem",
            "PROTOMESH_TLS_CLIENT_AUTH": "require",
            "PROTOMESH_TLS_SERVER_NAME": "protomesh.internal",
            "PROTOMESH_GATEWAY_REQUIRE_TLS": "on",
            "PROTOMESH_GATEWAY_FORWARDED_ALLOW_IPS": "10.0.0.0/8, 127.0.0.1",
            "PROTOMESH_HEALTH_PORT": "8086",
        }
    )
    assert settings.tls == TlsSettings(
        "/c.pem", "/k.pem", "/ca.pem", "require", "protomesh.internal"
    )
    assert settings.gateway.require_tls is True
    assert settings.gateway.forwarded_allow_ips == ("10.0.0.0/8", "127.0.0.1")
    assert settings.health_port == 8086
    assert Settings.from_env(settings.to_env()) == settings


def test_tls_is_off_without_any_setting_and_the_gateway_url_follows_it(pki: Pki) -> None:
    assert load(TlsSettings()) is None
    assert Dialer.from_settings(Settings()).tls is None
    assert Settings().gateway_url.startswith("http://")
    assert Settings(tls=TlsSettings(ca=str(pki.ca))).gateway_url.startswith("https://")


def test_a_certificate_its_key_and_its_ca_load(pki: Pki) -> None:
    materials = load(tls(pki, client_auth="require"))
    assert materials is not None
    assert materials.require_client_auth
    assert materials.certificate_chain == pki.server.cert.read_bytes()
    assert materials.root_certificates == pki.ca.read_bytes()
    materials.server_credentials()
    materials.channel_credentials()


def test_a_client_may_have_only_the_ca(pki: Pki) -> None:
    materials = load(TlsSettings(ca=str(pki.ca)))
    assert materials is not None
    assert materials.certificate_chain is None
    with pytest.raises(TlsError, match="no certificate to serve"):
        materials.server_credentials()


def test_an_expired_certificate_is_refused_at_start_up(pki: Pki) -> None:
    expired = tls(pki, cert=str(pki.expired_server.cert), key=str(pki.expired_server.key))
    with pytest.raises(TlsError, match=r"PROTOMESH_TLS_CERT=.*expired on \d{4}-\d\d-\d\d"):
        load(expired)
    with pytest.raises(TlsError, match="expired on"):
        Dialer.from_settings(Settings(tls=expired))


def test_a_certificate_not_valid_yet_is_refused(pki: Pki) -> None:
    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
    with pytest.raises(TlsError, match="not valid before"):
        load(tls(pki), now=before)


def test_a_key_that_is_not_the_certificates_is_refused(pki: Pki) -> None:
    with pytest.raises(TlsError, match="is not the key of PROTOMESH_TLS_CERT"):
        load(tls(pki, key=str(pki.client.key)))
    with pytest.raises(TlsError, match="not an unencrypted PEM private key"):
        load(tls(pki, key=str(pki.ca)))


def test_a_certificate_from_another_ca_is_refused(pki: Pki) -> None:
    with pytest.raises(TlsError, match="not a CA in PROTOMESH_TLS_CA"):
        load(tls(pki, ca=str(pki.other_ca)))


def test_a_chain_through_an_intermediate_is_accepted(tmp_path: Path) -> None:
    root = create_authority("root")
    intermediate = create_authority("intermediate", issuer=root)
    leaf = issue(intermediate, ["localhost"])
    (tmp_path / "chain.pem").write_bytes(leaf.certificate + intermediate.pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.certificate)
    (tmp_path / "key.pem").write_bytes(leaf.key)
    (tmp_path / "root.pem").write_bytes(root.pem)
    chain = TlsSettings(
        str(tmp_path / "chain.pem"), str(tmp_path / "key.pem"), str(tmp_path / "root.pem")
    )
    assert load(chain) is not None
    with pytest.raises(TlsError, match="issued by CN=intermediate, which is not a CA"):
        load(dataclasses.replace(chain, cert=str(tmp_path / "leaf.pem")))


def test_require_needs_a_ca_and_a_certificate_to_present(pki: Pki) -> None:
    with pytest.raises(TlsError, match="needs PROTOMESH_TLS_CA"):
        load(tls(pki, client_auth="require", ca=""))
    with pytest.raises(TlsError, match="no certificate to present"):
        load(TlsSettings(ca=str(pki.ca), client_auth="require"))


def test_client_auth_is_none_or_require_and_cert_and_key_go_together(pki: Pki) -> None:
    with pytest.raises(TlsError, match="expected none or require"):
        load(tls(pki, client_auth="optional"))
    with pytest.raises(TlsError, match="go together"):
        load(tls(pki, key=""))


def test_an_unreadable_file_is_named(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"PROTOMESH_TLS_CA=.*missing\.pem: cannot read it"):
        load(tls(pki, ca=str(tmp_path / "missing.pem")))
    (tmp_path / "empty.pem").write_text("not a certificate")
    with pytest.raises(TlsError, match="no PEM certificate"):
        load(tls(pki, cert=str(tmp_path / "empty.pem")))


def test_replica_lists_are_checked_against_their_host_unless_a_name_is_set() -> None:
    materials = TlsMaterials()
    assert materials.target_name("127.0.0.1:50051") == ""
    assert materials.target_name("dns:///document-headless.ns.svc.cluster.local:50051") == ""
    assert materials.target_name("ipv4:127.0.0.1:50051,127.0.0.1:50151") == "127.0.0.1"
    assert materials.target_name("ipv6:[::1]:50051,[::1]:50151") == "::1"
    named = TlsMaterials(server_name="protomesh.internal")
    assert named.target_name("ipv4:127.0.0.1:50051") == "protomesh.internal"
    assert named.target_name("10.0.0.1:50051") == "protomesh.internal"


def test_https_clients_verify_with_the_ca(pki: Pki) -> None:
    assert https_verification(TlsSettings()) is True
    context = https_verification(TlsSettings(ca=str(pki.ca)))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_the_gateway_serves_https_with_the_certificate(pki: Pki) -> None:
    config = GatewayConfig.from_settings(pki.settings(Settings(), client_auth="require"))
    assert config.https
    assert config.tokens_need_tls
    assert config.base_url.startswith("https://")
    options = config.uvicorn_options()
    assert options["ssl_certfile"] == str(pki.server.cert)
    assert options["ssl_keyfile"] == str(pki.server.key)
    assert options["proxy_headers"] is False  # no X-Forwarded-Proto believed by default
    with pytest.raises(TlsError, match="no certificate to serve HTTPS"):
        GatewayConfig.from_settings(Settings(tls=TlsSettings(ca=str(pki.ca))))


def test_the_gateway_believes_only_the_configured_proxies() -> None:
    gateway = dataclasses.replace(
        Settings().gateway, require_tls=True, forwarded_allow_ips=("10.0.0.0/8",)
    )
    config = GatewayConfig.from_settings(Settings(gateway=gateway))
    assert not config.https
    assert config.tokens_need_tls
    options = config.uvicorn_options()
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == ["10.0.0.0/8"]
    assert "ssl_certfile" not in options


def test_dev_certificates_cover_this_machine_and_the_services(tmp_path: Path) -> None:
    files = ensure_dev_certificates(tmp_path / "tls", dev_tls_names(Settings()))
    server = x509.load_pem_x509_certificate(files.server.read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(n) for n in sans.get_values_for_type(x509.DNSName)}
    addresses = {str(a) for a in sans.get_values_for_type(x509.IPAddress)}
    assert {"localhost", "document", "search", "task", "cost", "gateway"} <= names
    assert {"127.0.0.1", "::1"} <= addresses
    for key in (files.server_key, files.client_key, files.directory / "ca-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Server (also presented as a client certificate) and client both load with the CA.
    assert load(TlsSettings(str(files.server), str(files.server_key), str(files.ca), "require"))
    assert load(TlsSettings(str(files.client), str(files.client_key), str(files.ca)))


def test_dev_certificates_are_kept_and_reissued_when_the_names_change(tmp_path: Path) -> None:
    first = ensure_dev_certificates(tmp_path, LOCAL_NAMES)
    ca, server = first.ca.read_bytes(), first.server.read_bytes()
    again = ensure_dev_certificates(tmp_path, LOCAL_NAMES)
    assert (again.ca.read_bytes(), again.server.read_bytes()) == (ca, server)
    wider = ensure_dev_certificates(tmp_path, [*LOCAL_NAMES, "protomesh.test"])
    assert wider.ca.read_bytes() == ca
    assert wider.server.read_bytes() != server


def test_up_with_tls_points_every_process_at_the_dev_certificates(tmp_path: Path) -> None:
    settings, files = with_dev_tls(Settings(data_dir=tmp_path))
    assert settings.tls.cert == str(files.server)
    assert settings.tls.ca == str(files.ca)
    assert settings.tls.client_auth == "none"
    assert files.directory == tmp_path.resolve() / "tls"
    env = settings.to_env()
    assert env["PROTOMESH_TLS_CA"] == str(files.ca)
    mutual = Settings(data_dir=tmp_path, tls=TlsSettings(client_auth="require"))
    assert with_dev_tls(mutual)[0].tls.client_auth == "require"

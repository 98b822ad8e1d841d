"""TLS on every hop: the files `PROTOMESH_TLS_*` name, checked once at start-up,
turned into gRPC server and channel credentials and an `ssl.SSLContext` for HTTPS
clients; and the dev CA that `protomesh up --tls` creates.

A process with any TLS setting serves only TLS and dials only TLS (there is no
plaintext fallback). What it is given is checked before anything is bound or
dialled, so a mistake is a clear error at start-up instead of handshakes that
fail later: a missing or unreadable file, a key that is not the certificate's,
a certificate that has expired or is not valid yet, `require` without a CA to
verify clients with or without a certificate to present.

The peer's side is gRPC's (BoringSSL's): a server certificate from another CA
fails the client's handshake with `CERTIFICATE_VERIFY_FAILED`, an expired one
with `certificate has expired`, and under `require` a client without a valid
certificate is refused in the handshake (the server logs why; the client sees
UNAVAILABLE): no RPC reaches a handler.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.platform.config import TlsSettings
from services.platform.identity import private_pem, write_private

CLIENT_AUTH = ("none", "require")


class TlsError(ValueError):
    """The TLS settings cannot work; the message says which and why."""


@dataclass(frozen=True)
class TlsMaterials:
    """What the TLS settings name, read and checked (PEM bytes)."""

    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    root_certificates: bytes | None = None
    require_client_auth: bool = False
    server_name: str = ""

    def server_credentials(self) -> grpc.ServerCredentials:
        """For `add_secure_port`: this process's certificate; under `require`,
        client certificates are verified against the CA."""
        if self.certificate_chain is None or self.private_key is None:
            raise TlsError(
                "TLS is on but this process has no certificate to serve: set "
                "PROTOMESH_TLS_CERT and PROTOMESH_TLS_KEY"
            )
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.root_certificates,
            require_client_auth=self.require_client_auth,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Verifies servers against the CA (the system's roots without one) and
        presents this process's certificate when it has one."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def target_name(self, target: str) -> str:
        """The name a server's certificate must carry, when it is not the target's
        host as gRPC sees it: `PROTOMESH_TLS_SERVER_NAME`, else for an `ipv4:`/`ipv6:`
        list (replicas on one machine) the first address's host — gRPC would check
        the whole list as one name. "" leaves it to gRPC."""
        if self.server_name:
            return self.server_name
        scheme, _, addresses = target.partition(":")
        if scheme not in ("ipv4", "ipv6") or not addresses:
            return ""
        first = addresses.split(",")[0]
        host = first[1:].split("]")[0] if first.startswith("[") else first.rsplit(":", 1)[0]
        return host


def load(settings: TlsSettings, now: datetime.datetime | None = None) -> TlsMaterials | None:
    """The checked materials, or None when TLS is off (no TLS setting at all)."""
    if not settings.enabled:
        return None
    if settings.client_auth not in CLIENT_AUTH:
        raise TlsError(
            f"PROTOMESH_TLS_CLIENT_AUTH={settings.client_auth!r}: expected none or require"
        )
    if bool(settings.cert) != bool(settings.key):
        raise TlsError("PROTOMESH_TLS_CERT and PROTOMESH_TLS_KEY go together: set both or neither")
    require = settings.client_auth == "require"
    if require and not settings.ca:
        raise TlsError(
            "PROTOMESH_TLS_CLIENT_AUTH=require needs PROTOMESH_TLS_CA to verify clients with"
        )
    if require and not settings.cert:
        raise TlsError(
            "PROTOMESH_TLS_CLIENT_AUTH=require: this process has no certificate to present to "
            "other servers (PROTOMESH_TLS_CERT, PROTOMESH_TLS_KEY)"
        )
    chain = key = roots = None
    authorities: list[x509.Certificate] = []
    if settings.ca:
        roots = _read("PROTOMESH_TLS_CA", settings.ca)
        authorities = _certificates("PROTOMESH_TLS_CA", settings.ca, roots)
    if settings.cert:
        chain = _read("PROTOMESH_TLS_CERT", settings.cert)
        key = _read("PROTOMESH_TLS_KEY", settings.key)
        certificates = _certificates("PROTOMESH_TLS_CERT", settings.cert, chain)
        _check_validity("PROTOMESH_TLS_CERT", settings.cert, certificates[0], now)
        _check_key(settings, certificates[0], key)
        if authorities:
            _check_issuer(settings, certificates, authorities, now)
    return TlsMaterials(chain, key, roots, require, settings.server_name)


def https_verification(settings: TlsSettings) -> ssl.SSLContext | bool:
    """What an HTTPS client (httpx `verify=`) checks the gateway against: the CA
    when one is set, else the system's roots."""
    if not settings.ca:
        return True
    return ssl.create_default_context(cafile=settings.ca)


def _read(variable: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"{variable}={path}: cannot read it ({exc.strerror})") from None


def _certificates(variable: str, path: str, data: bytes) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise TlsError(f"{variable}={path}: no PEM certificate in it")
    return certificates


def _check_validity(
    variable: str, path: str, certificate: x509.Certificate, now: datetime.datetime | None
) -> None:
    now = now or datetime.datetime.now(datetime.UTC)
    subject = certificate.subject.rfc4514_string()
    if now > certificate.not_valid_after_utc:
        raise TlsError(
            f"{variable}={path}: the certificate for {subject} expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
        )
    if now < certificate.not_valid_before_utc:
        raise TlsError(
            f"{variable}={path}: the certificate for {subject} is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
        )


def _check_issuer(
    settings: TlsSettings,
    chain: list[x509.Certificate],
    authorities: list[x509.Certificate],
    now: datetime.datetime | None,
) -> None:
    """The certificate comes (through the chain's intermediates) from a CA of the
    bundle, so peers that verify with the same bundle accept it."""
    current, rest = chain[0], chain[1:]
    while True:
        issuer = next((a for a in authorities if _issued_by(current, a)), None)
        if issuer is not None:
            _check_validity("PROTOMESH_TLS_CA", settings.ca, issuer, now)
            return
        parent = next((c for c in rest if _issued_by(current, c)), None)
        if parent is None:
            raise TlsError(
                f"PROTOMESH_TLS_CERT={settings.cert}: issued by "
                f"{current.issuer.rfc4514_string()}, which is not a CA in "
                f"PROTOMESH_TLS_CA={settings.ca}"
            )
        rest = [c for c in rest if c is not parent]
        current = parent


def _check_key(settings: TlsSettings, leaf: x509.Certificate, data: bytes) -> None:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise TlsError(
            f"PROTOMESH_TLS_KEY={settings.key}: not an unencrypted PEM private key"
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = key.public_key().public_bytes(serialization.Encoding.DER, public)
    theirs = leaf.public_key().public_bytes(serialization.Encoding.DER, public)
    if ours != theirs:
        raise TlsError(
            f"PROTOMESH_TLS_KEY={settings.key} is not the key of PROTOMESH_TLS_CERT={settings.cert}"
        )


def _issued_by(certificate: x509.Certificate, authority: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(authority)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# --- the dev CA (`protomesh up --tls`) ------------------------------------------------

DEV_CA_DAYS = 365
DEV_LEAF_DAYS = 90
RENEW_WHEN_DAYS_LEFT = 7
CA_FILE, CA_KEY_FILE = "ca.pem", "ca-key.pem"
SERVER_FILE, SERVER_KEY_FILE = "server.pem", "server-key.pem"
CLIENT_FILE, CLIENT_KEY_FILE = "client.pem", "client-key.pem"


@dataclass(frozen=True)
class Authority:
    """A CA that issues certificates (the dev CA, or one a test makes)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM."""

    certificate: bytes
    key: bytes

    def write(self, certificate_path: Path, key_path: Path) -> None:
        certificate_path.write_bytes(self.certificate)
        write_private(key_path, self.key)


def create_authority(
    common_name: str = "protomesh dev CA",
    days: int = DEV_CA_DAYS,
    issuer: Authority | None = None,
) -> Authority:
    """A self-signed root CA, or an intermediate one signed by `issuer`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signing_key = issuer.key if issuer else key
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=0 if issuer else None), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Authority(key, builder.sign(signing_key, hashes.SHA256()))


def issue(
    authority: Authority,
    names: Sequence[str],
    *,
    server: bool = True,
    client: bool = True,
    not_valid_before: datetime.datetime | None = None,
    not_valid_after: datetime.datetime | None = None,
) -> Issued:
    """A leaf certificate for `names` (DNS names or IP addresses; the first is
    its common name), for serving and/or as a client certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_valid_before or now - datetime.timedelta(minutes=5))
        .not_valid_after(not_valid_after or now + datetime.timedelta(days=DEV_LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName(list(_general_names(names))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    return Issued(certificate.public_bytes(serialization.Encoding.PEM), private_pem(key))


@dataclass(frozen=True)
class DevCertificates:
    """Where `ensure_dev_certificates` put the dev CA and certificates."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / CA_FILE

    @property
    def server(self) -> Path:
        return self.directory / SERVER_FILE

    @property
    def server_key(self) -> Path:
        return self.directory / SERVER_KEY_FILE

    @property
    def client(self) -> Path:
        return self.directory / CLIENT_FILE

    @property
    def client_key(self) -> Path:
        return self.directory / CLIENT_KEY_FILE


def ensure_dev_certificates(directory: Path, names: Iterable[str]) -> DevCertificates:
    """A dev CA and, issued by it, a server certificate for `names` (also usable as
    a client certificate: the services present it to each other under mTLS) and a
    client certificate (for the CLI, grpcurl, curl). Kept across runs; the CA is
    made again when it is close to expiring, a certificate when it is, when its CA
    changed, or when it does not cover `names`."""
    files = DevCertificates(directory)
    names = list(dict.fromkeys(names))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    authority = _usable_authority(files)
    if authority is None:
        authority = create_authority()
        write_private(files.directory / CA_KEY_FILE, private_pem(authority.key))
        files.ca.write_bytes(authority.pem)
    if not _usable_leaf(files.server, authority, names):
        issue(authority, names).write(files.server, files.server_key)
    if not _usable_leaf(files.client, authority, ()):
        issue(authority, ["protomesh-dev-client"], server=False).write(
            files.client, files.client_key
        )
    return files


def _usable_authority(files: DevCertificates) -> Authority | None:
    try:
        certificate = x509.load_pem_x509_certificate(files.ca.read_bytes())
        key = serialization.load_pem_private_key(
            (files.directory / CA_KEY_FILE).read_bytes(), password=None
        )
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _expiring(certificate):
        return None
    return Authority(key, certificate)


def _usable_leaf(path: Path, authority: Authority, names: Iterable[str]) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    if _expiring(certificate) or not _issued_by(certificate, authority.certificate):
        return False
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return not list(names)
    covered = {str(n) for n in sans.value.get_values_for_type(x509.DNSName)} | {
        str(n) for n in sans.value.get_values_for_type(x509.IPAddress)
    }
    return set(names) <= covered


def _expiring(certificate: x509.Certificate) -> bool:
    left = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left < datetime.timedelta(days=RENEW_WHEN_DAYS_LEFT)


def _general_names(names: Iterable[str]) -> Iterable[x509.GeneralName]:
    for name in names:
        try:
            yield x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            yield x509.DNSName(name)

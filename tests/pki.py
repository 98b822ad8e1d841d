"""Certificates for the TLS tests, made with the platform's own CA code
(services/platform/tls.py): a CA and, issued by it, a server certificate for
127.0.0.1/localhost, a client certificate, expired ones of each; and a second,
unrelated CA (the "wrong CA")."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from pathlib import Path

from services.platform.config import Settings, TlsSettings
from services.platform.tls import Issued, create_authority, issue

LOCAL_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    server: Pair
    client: Pair
    expired_server: Pair
    expired_client: Pair
    other_server: Pair  # issued by other_ca

    def settings(
        self,
        base: Settings,
        pair: Pair | None = None,
        ca: Path | None = None,
        client_auth: str = "none",
    ) -> Settings:
        """`base` with TLS: `pair` (the server certificate by default) and `ca`."""
        pair = pair or self.server
        tls = TlsSettings(
            cert=str(pair.cert),
            key=str(pair.key),
            ca=str(ca or self.ca),
            client_auth=client_auth,
        )
        return dataclasses.replace(base, tls=tls)


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    authority = create_authority("protomesh test CA")
    other = create_authority("some other CA")
    (directory / "ca.pem").write_bytes(authority.pem)
    (directory / "other-ca.pem").write_bytes(other.pem)
    now = datetime.datetime.now(datetime.UTC)
    past = {
        "not_valid_before": now - datetime.timedelta(days=30),
        "not_valid_after": now - datetime.timedelta(days=1),
    }

    def write(name: str, issued: Issued) -> Pair:
        pair = Pair(directory / f"{name}.pem", directory / f"{name}-key.pem")
        issued.write(pair.cert, pair.key)
        return pair

    return Pki(
        ca=directory / "ca.pem",
        other_ca=directory / "other-ca.pem",
        server=write("server", issue(authority, LOCAL_NAMES)),
        client=write("client", issue(authority, ["test-client"], server=False)),
        expired_server=write("expired-server", issue(authority, LOCAL_NAMES, **past)),
        expired_client=write(
            "expired-client", issue(authority, ["test-client"], server=False, **past)
        ),
        other_server=write("other-server", issue(other, LOCAL_NAMES)),
    )

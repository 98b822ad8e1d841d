"""Signing keys and token minting: the local dev key, `protomesh token`, and the
internal service identity that services use to call each other.

The first `protomesh up` creates an ES256 key pair in the data dir and a JWKS
holding its public half. `rotate_dev_key` adds a new key and keeps the old one
in the JWKS, so tokens signed by either verify during a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.platform.config import Settings

KEY_FILE = "dev-signing-key.pem"
JWKS_FILE = "jwks.json"
SERVICE_SCOPES = (
    "documents:read documents:write documents:watch-all search:read search:admin "
    "tasks:read tasks:write cost:read cost:write"
)
SERVICE_TENANT = "_protomesh"
DELEGATED_TOKEN_TTL_SECONDS = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }
    # RFC 7638 thumbprint: the required members in lexicographic order, no spaces.
    thumbprint = hashlib.sha256(json.dumps(jwk, separators=(",", ":")).encode()).digest()
    return {**jwk, "kid": _b64(thumbprint)[:16], "alg": "ES256", "use": "sig"}


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key


def write_jwks(path: Path, keys: Iterable[dict[str, str]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": list(keys)}, indent=2))
    tmp.replace(path)


def ensure_dev_key(data_dir: Path) -> Path:
    """Creates the dev signing key and its JWKS once; returns the key path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key_path = data_dir / KEY_FILE
    if not key_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        write_private(key_path, private_pem(key))
        write_jwks(data_dir / JWKS_FILE, [public_jwk(key)])
    elif not (data_dir / JWKS_FILE).exists():
        write_jwks(data_dir / JWKS_FILE, [public_jwk(load_key(key_path))])
    return key_path


def rotate_dev_key(data_dir: Path) -> Path:
    """Replaces the signing key; the JWKS keeps the previous public key as well."""
    key_path = ensure_dev_key(data_dir)
    previous = public_jwk(load_key(key_path))
    key = ec.generate_private_key(ec.SECP256R1())
    write_private(key_path, private_pem(key))
    write_jwks(data_dir / JWKS_FILE, [public_jwk(key), previous])
    return key_path


def mint_token(
    key: ec.EllipticCurvePrivateKey,
    *,
    tenant: str,
    user: str,
    scopes: str,
    issuer: str,
    audience: str,
    ttl_seconds: int = 3600,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": user,
        "tenant_id": tenant,
        "scope": scopes,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        **(extra_claims or {}),
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": public_jwk(key)["kid"]})


class ServiceIdentity:
    """The token a service presents when it calls another service on its own behalf
    (e.g. the search indexer reading every tenant's change feed). Minted from the
    signing key, or the fixed `settings.service_token`; refreshed before expiry."""

    def __init__(self, settings: Settings, service: str) -> None:
        self.settings = settings
        self.service = service
        self._token = ""
        self._expires = 0.0

    def token(self) -> str:
        if self.settings.service_token:
            return self.settings.service_token
        if time.time() > self._expires - 60:
            ttl = self.settings.service_token_ttl_seconds
            key = load_key(self.settings.data_dir / KEY_FILE)
            self._token = mint_token(
                key,
                tenant=SERVICE_TENANT,
                user=f"service:{self.service}",
                scopes=SERVICE_SCOPES,
                issuer=self.settings.jwt_issuer,
                audience=self.settings.jwt_audience,
                ttl_seconds=ttl,
            )
            self._expires = time.time() + ttl
        return self._token

    def token_for(self, tenant: str, user: str, scopes: str) -> str:
        """A short-lived token that acts as `user` of `tenant` (e.g. a task worker
        calling other services for the task's submitter, so row-level security
        applies downstream). Records the acting service in an RFC 8693 `act` claim."""
        key = load_key(self.settings.data_dir / KEY_FILE)
        return mint_token(
            key,
            tenant=tenant,
            user=user,
            scopes=scopes,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            ttl_seconds=min(self.settings.service_token_ttl_seconds, DELEGATED_TOKEN_TTL_SECONDS),
            extra_claims={"act": {"sub": f"service:{self.service}"}},
        )

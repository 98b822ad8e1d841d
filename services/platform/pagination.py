"""Opaque page tokens (AIP-158), bound to the caller's tenant and query.

A token is the keyset position of the next page plus a digest of the query it
belongs to (filter, order, view...), signed with HMAC-SHA256 over the tenant
id. Reusing a token with another query or from another tenant, or altering it,
is INVALID_ARGUMENT on `page_token`, never a silent wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.platform.config import Settings
from services.platform.errors import InvalidArgument

_MAC_BYTES = 16
SECRET_FILE = "page-token-secret"  # noqa: S105 (a file name, not a secret)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


class PageTokens:
    """Encodes and verifies page tokens with one secret (shared by all replicas)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("page token secret must be at least 16 bytes")
        self._secret = secret

    def encode(self, tenant: str, binding: Mapping[str, Any], position: Mapping[str, Any]) -> str:
        payload = _canonical({"b": self._binding_digest(binding), "p": dict(position)})
        mac = self._mac(tenant, payload)
        return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()

    def decode(self, token: str, tenant: str, binding: Mapping[str, Any]) -> dict[str, Any]:
        """The position stored in `token`; raises InvalidArgument if it does not belong here."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise _invalid() from exc
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(tenant, payload)):
            raise _invalid()
        try:
            decoded = json.loads(payload)
        except ValueError as exc:
            raise _invalid() from exc
        if decoded.get("b") != self._binding_digest(binding):
            raise InvalidArgument.for_field(
                "page_token",
                "page token was issued for a different query; "
                "keep filter and order unchanged while paging",
                reason="PAGE_TOKEN_MISMATCH",
            )
        position = decoded.get("p")
        if not isinstance(position, dict):
            raise _invalid()
        return position

    def _mac(self, tenant: str, payload: bytes) -> bytes:
        message = tenant.encode() + b"\x00" + payload
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_BYTES]

    @staticmethod
    def _binding_digest(binding: Mapping[str, Any]) -> str:
        return hashlib.sha256(_canonical(dict(binding))).hexdigest()[:16]


def _invalid() -> InvalidArgument:
    return InvalidArgument.for_field(
        "page_token",
        "page token is invalid or belongs to another caller",
        reason="PAGE_TOKEN_INVALID",
    )


def page_token_secret(settings: Settings) -> bytes:
    """`PROTOMESH_PAGE_TOKEN_SECRET`, else a random secret kept in the data dir (created
    once, shared by every process on this machine)."""
    if settings.page_token_secret:
        return settings.page_token_secret.encode()
    path = Path(settings.data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # atomic: the first process to get here wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()


def clamp_page_size(requested: int, default: int, maximum: int) -> int:
    """AIP-158: 0 means the default; anything above the maximum is the maximum."""
    if requested <= 0:
        return default
    return min(requested, maximum)

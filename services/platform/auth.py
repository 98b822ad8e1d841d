"""Caller identity: JWT verification against a JWKS with key rotation.

Tokens are RS256 or ES256 JWTs whose `kid` names a key in the JWKS (a file or
an http(s) URL). `iss`, `aud`, `exp`, `nbf` and `iat` are checked with a small
leeway; the tenant comes only from the verified `tenant_id` claim, the user
from `sub` and the scopes from `scope`. Verified tokens are cached until they
expire, so the signature is checked once per token, not once per call.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from services.platform.errors import PermissionDenied, Unauthenticated

ALGORITHMS = ("RS256", "ES256")
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "tenant_id")
WATCH_ALL_SCOPE = "documents:watch-all"


@dataclass(frozen=True)
class Principal:
    """A verified caller."""

    tenant_id: str
    user_id: str
    scopes: frozenset[str]
    token_id: str = ""
    expires_at: float = 0.0

    def require_scopes(self, needed: frozenset[str]) -> None:
        missing = needed - self.scopes
        if missing:
            raise PermissionDenied(
                f"token lacks scope {' '.join(sorted(missing))}",
                reason="MISSING_SCOPE",
                metadata={"missing": " ".join(sorted(missing))},
            )


class JwksSource:
    """Loads the JWKS from a file (re-read when it changes) or a URL (re-fetched on an
    unknown `kid`, at most once per `min_refresh_seconds`)."""

    def __init__(self, location: str, min_refresh_seconds: float = 5.0) -> None:
        self.location = location
        self.min_refresh_seconds = min_refresh_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at = 0.0
        self._stamp: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        found = self._keys.get(kid)
        if found is None and self._may_refresh():
            self.refresh()
            found = self._keys.get(kid)
        return found

    def _may_refresh(self) -> bool:
        if not self._keys:
            return True
        if self._is_url:
            return time.monotonic() - self._loaded_at >= self.min_refresh_seconds
        try:
            return Path(self.location).stat().st_mtime != self._stamp
        except OSError:
            return False

    @property
    def _is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    def refresh(self) -> None:
        with self._lock:
            document = self._fetch()
            keys: dict[str, jwt.PyJWK] = {}
            for entry in document.get("keys", []):
                kid = entry.get("kid")
                if not kid or entry.get("alg", "") not in ALGORITHMS:
                    continue
                keys[kid] = jwt.PyJWK.from_dict(entry)
            self._keys = keys
            self._loaded_at = time.monotonic()

    def _fetch(self) -> dict[str, Any]:
        if self._is_url:
            response = httpx.get(self.location, timeout=5.0)
            response.raise_for_status()
            return dict(response.json())
        path = Path(self.location)
        try:
            self._stamp = path.stat().st_mtime
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return {"keys": []}


class TokenVerifier:
    """Verifies bearer tokens into `Principal`s."""

    def __init__(
        self,
        jwks: JwksSource,
        issuer: str,
        audience: str,
        leeway_seconds: float = 30.0,
        cache_size: int = 10_000,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Principal] = OrderedDict()

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + self.leeway > time.time():
                return cached
            del self._cache[token]
        principal = self._verify_uncached(token)
        self._cache[token] = principal
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return principal

    def _verify_uncached(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token", reason="TOKEN_MALFORMED") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Unauthenticated(f"token algorithm {alg!r} is not accepted", reason="TOKEN_ALG")
        kid = header.get("kid")
        key = self.jwks.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated("token signed by an unknown key", reason="TOKEN_UNKNOWN_KEY")
        if key.algorithm_name != alg:
            raise Unauthenticated("token algorithm does not match its key", reason="TOKEN_ALG")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthenticated("token not yet valid", reason="TOKEN_NOT_YET_VALID") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated("token audience mismatch", reason="TOKEN_AUDIENCE") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("token issuer mismatch", reason="TOKEN_ISSUER") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token lacks claim {exc.claim}", reason="TOKEN_CLAIMS") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("token signature invalid", reason="TOKEN_INVALID") from exc
        tenant = claims.get("tenant_id")
        if not isinstance(tenant, str) or not tenant:
            raise Unauthenticated("token lacks a tenant", reason="TOKEN_CLAIMS")
        scope = claims.get("scope", "")
        return Principal(
            tenant_id=tenant,
            user_id=str(claims["sub"]),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            token_id=str(claims.get("jti", "")),
            expires_at=float(claims["exp"]),
        )


def parse_bearer(authorization: str | None) -> str:
    """The token of an `authorization: Bearer <token>` value ("" when there is none
    or the scheme is another). The one parser of the header, in services and gateway."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def bearer_token(authorization: str | None) -> str:
    """The token of an `authorization: Bearer <token>` value, or Unauthenticated."""
    if not authorization:
        raise Unauthenticated("missing bearer token", reason="TOKEN_MISSING")
    token = parse_bearer(authorization)
    if not token:
        raise Unauthenticated("authorization must be 'Bearer <token>'", reason="TOKEN_MISSING")
    return token

"""Authentication first: a request the gateway refuses by itself (a body it cannot
read, a path and body that disagree) is answered 401 when its credentials would
be refused too, as the services answer UNAUTHENTICATED before they look at a
request. Without this, a caller with no token learns about its JSON before it
learns that it needs a token.

Only the refusal path pays for it: a request the gateway can bind goes upstream,
where the service checks the token as always. The gateway checks that a bearer
token is present and well formed, and verifies it when it can read the JWKS the
services verify with (the same `TokenVerifier`); when it cannot, a token that is
present is left for the service to judge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from google.rpc import error_details_pb2

from gateway.errors import GatewayError, detail, unauthenticated
from services.platform.auth import JwksSource, TokenVerifier, bearer_token
from services.platform.config import Settings
from services.platform.errors import ERROR_DOMAIN, Unauthenticated

# The gateway's own refusals that a missing or bad token takes precedence over.
CREDENTIALS_FIRST = frozenset({400, 415})


class CredentialCheck:
    """Whether a request's credentials would be refused (`verifier` None: only
    whether a bearer token is there at all)."""

    def __init__(self, verifier: TokenVerifier | None = None) -> None:
        self.verifier = verifier

    @classmethod
    def from_settings(cls, settings: Settings) -> CredentialCheck:
        """Verifies tokens as the services do when the JWKS is reachable from here
        (a URL, or a file this process can see); otherwise presence only."""
        source = settings.jwks_source
        if not source.startswith(("http://", "https://")) and not Path(source).is_file():
            return cls(None)
        return cls(
            TokenVerifier(
                JwksSource(source),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                leeway_seconds=settings.jwt_leeway_seconds,
            )
        )

    async def refusal(self, headers: Mapping[str, str]) -> GatewayError | None:
        """The 401 the services would answer for these headers, or None."""
        try:
            token = bearer_token(headers.get("authorization"))
            if self.verifier is not None:
                # A JWKS URL is fetched with a blocking client: keep it off the loop.
                await asyncio.to_thread(self.verifier.verify, token)
        except Unauthenticated as exc:
            error = unauthenticated(str(exc))
            info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=ERROR_DOMAIN)
            error.details = [detail(info)]
            return error
        return None

    async def first_problem(
        self, needs_token: bool, headers: Mapping[str, str], error: GatewayError
    ) -> GatewayError:
        """`error`, unless the request needs a token and its credentials would be
        refused: then that 401."""
        if not needs_token or error.http_status not in CREDENTIALS_FIRST:
            return error
        return await self.refusal(headers) or error

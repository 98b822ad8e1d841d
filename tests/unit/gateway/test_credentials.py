"""Authentication before the gateway's own 400/415: the credential check against a
real JWKS and signed tokens (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.credentials import CredentialCheck
from gateway.errors import bad_request, not_found, payload_too_large, unsupported_media_type
from services.platform.config import Settings
from services.platform.identity import KEY_FILE, ensure_dev_key, load_key, mint_token


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    ensure_dev_key(tmp_path)
    return Settings(data_dir=tmp_path)


def _token(settings: Settings, **overrides: object) -> str:
    options: dict[str, object] = {
        "tenant": "t",
        "user": "u",
        "scopes": "documents:write",
        "issuer": settings.jwt_issuer,
        "audience": settings.jwt_audience,
    }
    options.update(overrides)
    return mint_token(load_key(settings.data_dir / KEY_FILE), **options)  # type: ignore[arg-type]


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_no_token_and_a_bad_body_is_401(settings: Settings) -> None:
    check = CredentialCheck.from_settings(settings)
    assert check.verifier is not None
    for error in (bad_request("bad body"), unsupported_media_type("text/plain", "json")):
        answer = await check.first_problem(True, {}, error)
        assert answer.http_status == 401
        assert answer.response_headers()["www-authenticate"].startswith("Bearer")
        assert answer.details[0]["reason"] == "TOKEN_MISSING"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not-a-jwt", "TOKEN_MALFORMED"),
        ("expired", "TOKEN_EXPIRED"),
        ("other-audience", "TOKEN_AUDIENCE"),
    ],
)
async def test_a_token_the_services_would_refuse_is_401_before_a_bad_body(
    settings: Settings, token: str, reason: str
) -> None:
    tokens = {
        "not-a-jwt": "not-a-jwt",
        "expired": _token(settings, ttl_seconds=-3600),
        "other-audience": _token(settings, audience="someone-else"),
    }
    check = CredentialCheck.from_settings(settings)
    answer = await check.first_problem(True, _bearer(tokens[token]), bad_request("bad body"))
    assert answer.http_status == 401
    assert answer.details[0]["reason"] == reason


async def test_a_valid_token_leaves_the_bad_request_as_it_is(settings: Settings) -> None:
    check = CredentialCheck.from_settings(settings)
    error = bad_request("field 'name' disagrees", "name")
    assert await check.first_problem(True, _bearer(_token(settings)), error) is error


async def test_other_refusals_and_methods_without_scopes_are_left_alone(
    settings: Settings,
) -> None:
    check = CredentialCheck.from_settings(settings)
    error = bad_request("bad body")
    assert await check.first_problem(False, {}, error) is error
    for other in (not_found("/v1/x"), payload_too_large(10)):
        assert await check.first_problem(True, {}, other) is other


async def test_without_a_jwks_only_the_presence_of_a_token_is_checked(tmp_path: Path) -> None:
    check = CredentialCheck.from_settings(Settings(data_dir=tmp_path / "none"))
    assert check.verifier is None
    error = bad_request("bad body")
    assert await check.first_problem(True, _bearer("opaque"), error) is error
    assert (await check.first_problem(True, {}, error)).http_status == 401
    basic = await check.first_problem(True, {"authorization": "Basic eDp5"}, error)
    assert basic.http_status == 401

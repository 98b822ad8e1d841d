"""Authentication and scopes through a real gRPC server."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from protomesh.document.v1 import document_service_pb2 as pb
from services.platform.auth import parse_bearer
from services.platform.config import Settings
from services.platform.identity import load_key, public_jwk, rotate_dev_key
from tests.conftest import Mint, bearer

GET = pb.GetDocumentRequest(name="documents/ok")


async def _code(stub, metadata) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    try:
        await stub.GetDocument(GET, metadata=metadata)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _claims(settings: Settings, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "alice",
        "tenant_id": "t1",
        "scope": "documents:read",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(settings: Settings, claims: dict[str, object]) -> str:
    key = load_key(settings.data_dir / "dev-signing-key.pem")
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": public_jwk(key)["kid"]})


async def test_valid_token_is_accepted_and_identity_reaches_the_handler(stub, mint: Mint) -> None:
    doc = await stub.GetDocument(GET, metadata=bearer(mint("t1", "bob", "documents:read")))
    assert doc.title == "t1/bob"


async def test_missing_token_is_unauthenticated(stub) -> None:
    assert await _code(stub, None) == grpc.StatusCode.UNAUTHENTICATED


async def test_non_bearer_authorization_is_unauthenticated(stub) -> None:
    assert await _code(stub, (("authorization", "Basic abc"),)) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": int(time.time()) - 3600}, id="expired"),
        pytest.param({"nbf": int(time.time()) + 3600}, id="not-yet-valid"),
        pytest.param({"aud": "someone-else"}, id="wrong-audience"),
        pytest.param({"iss": "evil"}, id="wrong-issuer"),
        pytest.param({"tenant_id": None}, id="missing-tenant"),
        pytest.param({"tenant_id": ""}, id="empty-tenant"),
        pytest.param({"sub": None}, id="missing-subject"),
        pytest.param({"exp": None}, id="missing-exp"),
    ],
)
async def test_bad_claims_are_unauthenticated(stub, settings: Settings, overrides) -> None:  # type: ignore[no-untyped-def]
    token = _sign(settings, _claims(settings, **overrides))
    assert await _code(stub, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED


async def test_alg_none_is_unauthenticated(stub, settings: Settings) -> None:
    token = jwt.encode(_claims(settings), key=None, algorithm="none")
    assert await _code(stub, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED


async def test_hs256_signed_with_the_public_key_is_unauthenticated(
    stub, settings: Settings
) -> None:
    jwks = json.loads((settings.data_dir / "jwks.json").read_text())
    public = json.dumps(jwks["keys"][0]).encode()
    header = {"alg": "HS256", "typ": "JWT", "kid": jwks["keys"][0]["kid"]}
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        f"{b64(json.dumps(header).encode())}.{b64(json.dumps(_claims(settings)).encode())}"
    )
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(signature)}"
    assert await _code(stub, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED


async def test_unknown_kid_is_unauthenticated(stub, settings: Settings) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(settings), stranger, algorithm="ES256", headers={"kid": "nope"})
    assert await _code(stub, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED


async def test_key_not_in_jwks_with_a_known_kid_is_unauthenticated(
    stub, settings: Settings
) -> None:
    kid = json.loads((settings.data_dir / "jwks.json").read_text())["keys"][0]["kid"]
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(settings), stranger, algorithm="ES256", headers={"kid": kid})
    assert await _code(stub, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED


async def test_rs256_token_with_an_ec_kid_is_unauthenticated(stub, settings: Settings) -> None:
    kid = json.loads((settings.data_dir / "jwks.json").read_text())["keys"][0]["kid"]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(settings), rsa_key, algorithm="RS256", headers={"kid": kid})
    assert await _code(stub, bearer(token)) == grpc.StatusCode.UNAUTHENTICATED


async def test_tampered_payload_is_unauthenticated(stub, settings: Settings) -> None:
    header, payload, signature = _sign(settings, _claims(settings)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["tenant_id"] = "t2"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert (
        await _code(stub, bearer(f"{header}.{forged}.{signature}"))
        == grpc.StatusCode.UNAUTHENTICATED
    )


async def test_missing_scope_is_permission_denied(stub, mint: Mint) -> None:
    token = mint("t1", scopes="documents:write")
    assert await _code(stub, bearer(token)) == grpc.StatusCode.PERMISSION_DENIED


async def test_rotation_keeps_old_and_new_keys_valid(
    stub, settings: Settings, tmp_path: Path
) -> None:
    old_token = _sign(settings, _claims(settings))
    rotate_dev_key(settings.data_dir)
    new_token = _sign(settings, _claims(settings))
    assert (
        jwt.get_unverified_header(old_token)["kid"] != jwt.get_unverified_header(new_token)["kid"]
    )
    assert await _code(stub, bearer(new_token)) == grpc.StatusCode.OK
    assert await _code(stub, bearer(old_token)) == grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", ""),
        ("Bearer", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_one_parser_reads_the_bearer_token(header: str | None, token: str) -> None:
    assert parse_bearer(header) == token

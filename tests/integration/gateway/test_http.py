"""Unary transcoding through the gateway to a real grpc.aio backend: every
binding form, success statuses, header bindings, errors in the AIP-193 shape,
deadlines and the gateway's own 400/404/405/413/415."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.integration.gateway.harness import Backend

FORM = "application/x-www-form-urlencoded"


async def test_get_by_resource_name_returns_proto3_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things/abc")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "things/abc"
    assert body["weight"] == str(2**40)
    assert body["kind"] == "KIND_SMALL"
    assert body["createTime"] == "2023-11-14T22:13:20Z"
    assert response.headers["etag"] == '"v1"'
    assert len(response.headers["x-request-id"]) == 32


async def test_additional_binding_routes_to_same_method(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/shelves/s1/things/t1")
    assert response.json()["name"] == "shelves/s1/things/t1"


async def test_a_path_takes_the_whole_name_a_response_returned(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/v1/things?thingId=full", json={"title": "x"})
    name = created.json()["name"]
    encoded = quote(name, safe="")  # what a generated client sends
    got = await client.get(f"/v1/things/{encoded}")
    assert got.json()["name"] == name == "things/full"
    patched = await client.patch(f"/v1/things/{encoded}", json={"title": "y"})
    assert patched.json()["name"] == name
    archived = await client.post(f"/v1/things/{encoded}:archive", json={"reason": "r"})
    assert archived.json()["name"] == name
    # A name of another collection stays a (strange) id of this one.
    other = await client.get("/v1/things/shelves%2Fs1")
    assert other.json()["name"] == "things/shelves%2Fs1"


async def test_query_parameters_reach_the_backend(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/things",
        params=[
            ("filter.kind", "KIND_LARGE"),
            ("tags", "a"),
            ("tags", "b"),
            ("maxAge", "2s"),
            ("labels[team]", "x"),
            ("big", "9007199254740993"),
        ],
    )
    echo = response.json()["echo"]
    assert echo["filter"]["kind"] == "KIND_LARGE"
    assert echo["tags"] == ["a", "b"]
    assert echo["maxAge"] == "2s"
    assert echo["labels"] == {"team": "x"}
    assert echo["big"] == "9007199254740993"


async def test_create_answers_policy_status_201_with_idempotency_key(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/things?thingId=t9", json={"title": "x"}, headers={"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 201
    assert response.json()["name"] == "things/t9"
    assert response.json()["labels"] == {"request_id": "k-1"}


async def test_custom_verb_answers_202(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/things/t1:archive", json={"reason": "old"})
    assert response.status_code == 202
    assert response.json()["title"] == "old"


async def test_patch_derives_update_mask_from_body(client: httpx.AsyncClient) -> None:
    response = await client.patch("/v1/things/t1", json={"title": "n", "settings": {"size": 2}})
    assert response.json()["labels"]["mask"] == "title,settings.size"
    assert response.json()["name"] == "things/t1"


async def test_if_match_reaches_etag_and_a_stale_one_is_412(client: httpx.AsyncClient) -> None:
    ok = await client.delete("/v1/things/t1", headers={"If-Match": '"v1"'})
    assert ok.json() == {"name": "things/t1", "etag": "v1"}
    stale = await client.delete("/v1/things/t1", headers={"If-Match": '"v0"'})
    assert stale.status_code == 412
    error = stale.json()["error"]
    assert error["code"] == 412
    assert error["status"] == "ABORTED"
    assert error["details"][0]["reason"] == "ETAG_MISMATCH"


async def test_an_aborted_call_that_is_not_about_the_etag_stays_409(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/v1/things/t1", headers={"If-Match": '"busy"'})
    assert response.status_code == 409
    assert response.json()["error"]["status"] == "ABORTED"


async def test_response_body_selects_one_field(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/thingNames")
    assert response.json() == ["things/a", "things/b"]


async def test_deep_wildcard_keeps_encoded_slash(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/echo/i%20d/deep/a/b%2Fc")
    request = response.json()["request"]
    assert (request["id"], request["rest"]) == ("i d", "a/b%2Fc")


async def test_path_and_body_disagreeing_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/echo/x:body", json={"id": "y"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["fieldViolations"][0]["field"] == "id"


async def test_custom_kind_and_nested_path_body_field(client: httpx.AsyncClient) -> None:
    custom = await client.put("/v1/echo:custom", json={"i32": 4})
    assert custom.json()["request"]["i32"] == 4
    nested = await client.put("/v1/echo/lbl", json={"values": [1]})
    assert nested.json()["request"]["nested"] == {"label": "lbl", "values": [1]}


async def test_unary_http_body_is_served_raw(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/files/a/b.txt")
    assert response.headers["content-type"] == "text/plain"
    assert response.content == b"file:a/b.txt"


async def test_headers_are_forwarded_as_metadata(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/echo",
        headers={
            "Authorization": "Bearer abc",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "X-Request-Id": "req-7",
            "Grpc-Metadata-Tenant-Hint": "acme",
            "Cookie": "never",
        },
    )
    metadata = response.json()["metadata"]
    assert metadata["authorization"] == "Bearer abc"
    assert metadata["traceparent"].startswith("00-0af7")
    assert metadata["x-request-id"] == "req-7"
    assert metadata["tenant-hint"] == "acme"
    assert "cookie" not in metadata
    assert response.headers["x-request-id"] == "req-7"


async def test_timeout_header_is_capped_by_default_deadline(client: httpx.AsyncClient) -> None:
    default = (await client.get("/v1/echo")).json()["deadlineSeconds"]
    assert 2.0 < default <= 3.05
    capped = (await client.get("/v1/echo", headers={"X-Timeout": "100"})).json()
    assert capped["deadlineSeconds"] <= 3.05
    short = (await client.get("/v1/echo", headers={"Grpc-Timeout": "500m"})).json()
    assert short["deadlineSeconds"] <= 0.55


async def test_deadline_exceeded_is_504(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sleep?duration=1s", headers={"Grpc-Timeout": "100m"})
    assert response.status_code == 504
    assert response.json()["error"]["status"] == "DEADLINE_EXCEEDED"


CODES = [
    (1, 499),
    (2, 500),
    (3, 400),
    (4, 504),
    (5, 404),
    (6, 409),
    (7, 403),
    (8, 429),
    (9, 400),
    (10, 409),
    (11, 400),
    (12, 501),
    (13, 500),
    (14, 503),
    (15, 500),
    (16, 401),
]


@pytest.mark.parametrize(("code", "http"), CODES)
async def test_backend_status_maps_to_http_with_aip193_body(
    client: httpx.AsyncClient, code: int, http: int
) -> None:
    response = await client.post(
        "/v1/fail", json={"code": code, "message": "m", "withDetails": True}
    )
    assert response.status_code == http
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (http, "m")
    types = [d["@type"] for d in error["details"]]
    assert types == [
        "type.googleapis.com/google.rpc.BadRequest",
        "type.googleapis.com/google.rpc.ErrorInfo",
    ]
    assert ("www-authenticate" in response.headers) == (http == 401)


@pytest.mark.parametrize("code", [8, 14])
async def test_retry_info_sets_retry_after(client: httpx.AsyncClient, code: int) -> None:
    response = await client.post("/v1/fail", json={"code": code, "retrySeconds": 2.5})
    assert response.headers["retry-after"] == "3"


async def test_unknown_route_is_404_in_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/things/a")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    assert response.json()["error"]["code"] == 405


async def test_unknown_query_parameter_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things?colour=red")
    assert response.status_code == 400
    assert "unknown query parameter 'colour'" in response.json()["error"]["message"]


async def test_unknown_json_field_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/things", json={"title": "x", "colour": "red"})
    assert response.status_code == 400
    assert "colour" in response.json()["error"]["message"]


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/things", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


async def test_body_too_large_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/things", json={"title": "x" * 70_000})
    assert response.status_code == 413
    assert response.json()["error"]["status"] == "OUT_OF_RANGE"


async def test_non_json_body_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/things", content=b"title=x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415


async def test_a_json_body_without_content_type_is_read_as_json(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/things?thingId=plain", content=b'{"title": "no type"}')
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "no type"


async def test_a_form_encoded_json_body_is_read_as_json(client: httpx.AsyncClient) -> None:
    # What `curl -d '{...}' URL` sends.
    response = await client.post(
        "/v1/things?thingId=curl",
        content=b'{"title": "from curl"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "from curl"


@pytest.mark.parametrize("content_type", ["", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_json_is_415_unless_typed_json(
    client: httpx.AsyncClient, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/v1/things", content=b"title=x", headers=headers)
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert "not valid JSON" in error["message"]
    assert "Content-Type: application/json" in error["message"]


async def test_an_empty_form_body_is_an_empty_request(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/things/a:archive", content=b"", headers={"content-type": FORM}
    )
    assert response.status_code == 202, response.text
    assert response.json()["name"] == "things/a"


async def test_authentication_is_checked_before_the_body(
    compiled: object, backend: Backend
) -> None:
    from gateway.credentials import CredentialCheck
    from tests.integration.gateway.harness import asgi_client, make_app

    app = make_app(compiled, backend, credentials=CredentialCheck())  # type: ignore[arg-type]
    async with asgi_client(app) as http:
        # CreateThing needs a token (scope things:write): no token + bad body is 401.
        for content, headers in (
            (b'{"title": "x", "colour": "red"}', {"content-type": "application/json"}),
            (b"{", {"content-type": "application/json"}),
            (b"title=x", {"content-type": "text/plain"}),
        ):
            response = await http.post("/v1/things", content=content, headers=headers)
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["error"]["details"][0]["reason"] == "TOKEN_MISSING"
        # With a token, the body's problem is the answer.
        response = await http.post(
            "/v1/things", json={"colour": "red"}, headers={"authorization": "Bearer t"}
        )
        assert response.status_code == 400
        # A method that needs no token answers its 400 to anyone.
        response = await http.post("/v1/things/a:archive", json={"name": "things/b"})
        assert response.status_code == 400


async def test_bad_timeout_header_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things/a", headers={"Grpc-Timeout": "soon"})
    assert response.status_code == 400


async def test_unreachable_backend_is_503(compiled: object, backend: Backend) -> None:
    from gateway.app import create_app
    from tests.integration.gateway.harness import SERVICE, asgi_client, gateway_config

    app = create_app(gateway_config(compiled), {SERVICE: "127.0.0.1:1"})  # type: ignore[arg-type]
    async with asgi_client(app) as dead:
        response = await dead.get("/v1/things/a", headers={"Grpc-Timeout": "2S"})
        assert response.status_code == 503
        ready = await dead.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["backends"] == {SERVICE: "UNAVAILABLE"}

"""Routes from the test protos' http rules: table-driven matching, 404/405,
custom-verb precedence, and rules rejected at start-up."""

from __future__ import annotations

import pytest
from google.api import http_pb2
from google.protobuf import descriptor_pool

from gateway.errors import GatewayError
from gateway.routing import Route, Router, RuleError, build_routes, method_info, routes_for_rule
from tests.integration.gateway.harness import SERVICE, Compiled


@pytest.fixture(scope="module")
def router(compiled: Compiled) -> Router:
    return Router(build_routes([SERVICE]))


ROUTES = [
    ("GET", "/v1/things/a", "ThingService_GetThing", {"name": "things/a"}),
    ("GET", "/v1/shelves/s/things/t", "ThingService_GetThing_1", {"name": "shelves/s/things/t"}),
    ("GET", "/v1/things", "ThingService_ListThings", {}),
    ("POST", "/v1/things", "ThingService_CreateThing", {}),
    ("PATCH", "/v1/things/a", "ThingService_UpdateThing", {"thing.name": "things/a"}),
    ("DELETE", "/v1/things/a", "ThingService_DeleteThing", {"name": "things/a"}),
    ("POST", "/v1/things/a:archive", "ThingService_ArchiveThing", {"name": "things/a"}),
    ("GET", "/v1/thingNames", "ThingService_ListThingNames", {}),
    ("POST", "/v1/echo", "ThingService_Echo", {}),
    ("GET", "/v1/echo", "ThingService_Echo_1", {}),
    ("POST", "/v1/echo/x:body", "ThingService_Echo_2", {"id": "x"}),
    ("PUT", "/v1/echo/lbl", "ThingService_Echo_3", {"nested.label": "lbl"}),
    ("GET", "/v1/echo/x/deep/a/b", "ThingService_Echo_4", {"id": "x", "rest": "a/b"}),
    ("GET", "/v1/anon/q/x", "ThingService_Echo_5", {}),
    ("PUT", "/v1/echo:custom", "ThingService_Echo_6", {}),
    ("GET", "/v1/files/a/b.txt", "ThingService_GetFile", {"path": "a/b.txt"}),
    ("GET", "/v1/things:watch", "ThingService_WatchThings", {}),
    ("GET", "/v1/things:export", "ThingService_ExportThings", {}),
    ("POST", "/v1/things:upload", "ThingService_UploadThings", {}),
    ("POST", "/v1/chat", "ThingService_Chat", {}),
]


@pytest.mark.parametrize(("method", "path", "operation", "values"), ROUTES)
def test_route_table(
    router: Router, method: str, path: str, operation: str, values: dict[str, str]
) -> None:
    route, bound = router.match(method, path)
    assert route.operation_id == operation
    assert bound == values


def test_unknown_path_is_404(router: Router) -> None:
    with pytest.raises(GatewayError) as caught:
        router.match("GET", "/v1/nothing")
    assert caught.value.http_status == 404


def test_known_path_with_wrong_method_is_405_with_allow(router: Router) -> None:
    with pytest.raises(GatewayError) as caught:
        router.match("PUT", "/v1/things/a")
    assert caught.value.http_status == 405
    assert caught.value.headers["allow"] == "DELETE, GET, PATCH"


def test_custom_verb_wins_over_variable_swallowing_it(router: Router) -> None:
    with pytest.raises(GatewayError) as caught:
        router.match("GET", "/v1/things/a:archive")
    assert caught.value.http_status == 405


class LinearRouter(Router):
    """Tries every route: what the bucketed router must agree with."""

    def _candidates(self, raw_path: str) -> list[Route]:
        return self.routes


TRICKY_PATHS = [
    "/",
    "/v1",
    "/v1/",
    "/v1/th%69ngs/a",  # an encoded literal still names the collection
    "/v1/things%3Awatch",
    "/v1/things:",
    "/v1/echo/x/deep/",
    "/v1/anon/q",
    "/v2/things/a",
    "//things/a",
    "/v1/files/",
    "/v1/echo/a:b/deep/c",  # a colon before the last segment is no verb
    "/v1/things/a:archive/x",
]


@pytest.mark.parametrize("path", sorted({p for _, p, _, _ in ROUTES} | set(TRICKY_PATHS)))
def test_bucketed_matching_agrees_with_trying_every_route(router: Router, path: str) -> None:
    linear = LinearRouter(router.routes)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        assert _outcome(router, method, path) == _outcome(linear, method, path)


def _outcome(router: Router, method: str, path: str) -> object:
    try:
        route, values = router.match(method, path)
    except GatewayError as exc:
        return exc.http_status, dict(exc.headers)
    return route.operation_id, values


def test_policy_is_read_from_the_method_options(router: Router) -> None:
    create, _ = router.match("POST", "/v1/things")
    assert create.method.success_status == 201
    assert create.method.scopes == ("things:write",)
    assert create.method.default_deadline == 5
    watch, _ = router.match("GET", "/v1/things:watch")
    assert watch.method.default_deadline is None
    assert (watch.method.cursor_request_field, watch.method.cursor_response_field) == (
        "after_seq",
        "event.seq",
    )


def _rule(compiled: Compiled, method: str, **fields: object) -> None:
    service = descriptor_pool.Default().FindServiceByName(SERVICE)
    info = method_info(SERVICE, service.methods_by_name[method])
    routes_for_rule(info, http_pb2.HttpRule(**fields))  # type: ignore[arg-type]


INVALID_RULES = [
    ("GetThing", {}, "sets no method"),
    ("GetThing", {"get": "v1/x"}, "starts with '/'"),
    ("GetThing", {"get": "/v1/{nope}"}, "has no field 'nope'"),
    ("GetThing", {"get": "/v1/{read_mask.paths}"}, "repeated"),
    ("CreateThing", {"get": "/v1/{thing}"}, "is a message"),
    ("CreateThing", {"get": "/v1/x", "body": "thing"}, "GET cannot have a body"),
    ("CreateThing", {"post": "/v1/x", "body": "nope"}, "body 'nope' is not a field"),
    ("GetThing", {"get": "/v1/x", "response_body": "nope"}, "response_body 'nope'"),
    ("UploadThings", {"post": "/v1/x"}, "client-streaming method needs a body"),
    ("GetThing", {"custom": {"kind": "", "path": "/v1/x"}}, "custom pattern has no kind"),
    (
        "GetThing",
        {
            "get": "/v1/x",
            "additional_bindings": [{"get": "/v1/y", "additional_bindings": [{"get": "/z"}]}],
        },
        "cannot nest",
    ),
]


@pytest.mark.parametrize(("method", "fields", "reason"), INVALID_RULES)
def test_invalid_rule_fails_at_start_up_with_clear_message(
    compiled: Compiled, method: str, fields: dict[str, object], reason: str
) -> None:
    with pytest.raises(RuleError, match=reason):
        _rule(compiled, method, **fields)


def test_unknown_service_fails_at_start_up(compiled: Compiled) -> None:
    with pytest.raises(RuleError, match="not in the descriptor pool"):
        build_routes(["nope.v1.Missing"])


def test_real_protomesh_services_build_routes() -> None:
    from gateway.config import GatewayConfig
    from services.platform.catalog import PROTOMESH_SERVICES

    GatewayConfig(
        proto_modules=tuple(m for _, m in PROTOMESH_SERVICES.values())
    ).import_proto_modules()
    routes = build_routes(PROTOMESH_SERVICES)
    router = Router(routes)
    assert router.match("GET", "/v1/documents/d1")[0].method.name == "GetDocument"
    assert router.match("POST", "/v1/tasks/t1:cancel")[0].method.name == "CancelTask"
    assert router.match("GET", "/v1/spend:export")[0].method.returns_http_body

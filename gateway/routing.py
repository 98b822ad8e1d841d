"""Routes built from the services' `google.api.http` rules, and the matcher.

`build_routes` reads every method of the given services from the default
descriptor pool, validates each rule (and its `additional_bindings`) against
google/api/http.proto and fails with `RuleError` naming the method and the
problem. `Router.match` picks the most specific route for a method and raw path,
or raises the gateway's 404/405.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from gateway.errors import method_not_allowed, not_found
from gateway.jsonmap import SCALAR_WKTS, is_repeated, message_name, resolve_path
from gateway.patterns import PathTemplate, SegmentKind, TemplateError, parse_template
from protomesh.common.v1 import options_pb2

HTTP_BODY = "google.api.HttpBody"
_BODYLESS = frozenset({"GET", "DELETE"})


class RuleError(ValueError):
    """A `google.api.http` rule the gateway cannot serve (raised at start-up)."""


@dataclass(frozen=True)
class MethodInfo:
    """One RPC as the gateway calls it."""

    service: str
    descriptor: MethodDescriptor
    request_class: type[Message]
    response_class: type[Message]
    success_status: int
    default_deadline: float | None
    cursor_request_field: str
    cursor_response_field: str
    scopes: tuple[str, ...]
    comment: str = ""

    @property
    def name(self) -> str:
        return self.descriptor.name

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.descriptor.name}"

    @property
    def client_streaming(self) -> bool:
        return bool(self.descriptor.client_streaming)

    @property
    def server_streaming(self) -> bool:
        return bool(self.descriptor.server_streaming)

    @property
    def request_desc(self) -> Descriptor:
        return self.descriptor.input_type

    @property
    def response_desc(self) -> Descriptor:
        return self.descriptor.output_type

    @property
    def returns_http_body(self) -> bool:
        return bool(self.response_desc.full_name == HTTP_BODY)

    @cached_property
    def response_has_etag(self) -> bool:
        """Whether replies carry a string `etag` (answered as the ETag header)."""
        etag = self.response_desc.fields_by_name.get("etag")
        return etag is not None and etag.type == FieldDescriptor.TYPE_STRING


@dataclass(frozen=True)
class Route:
    http_method: str
    template: PathTemplate
    body: str
    response_body: str
    method: MethodInfo
    binding_index: int

    @property
    def operation_id(self) -> str:
        base = f"{self.method.service.rsplit('.', 1)[-1]}_{self.method.name}"
        return base if self.binding_index == 0 else f"{base}_{self.binding_index}"

    @cached_property
    def response_body_json_name(self) -> str:
        """The JSON name of the `response_body` field ("" when the rule has none)."""
        if not self.response_body:
            return ""
        return str(self.method.response_desc.fields_by_name[self.response_body].json_name)

    @cached_property
    def path_attributes(self) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
        """Each path variable with the field names that lead to it, when every one is
        a string field reached through plain singular messages, so the value can be
        set as an attribute just as the JSON mapping would set it; None otherwise."""
        chains: list[tuple[str, tuple[str, ...]]] = []
        for var in self.template.variables:
            fields = resolve_path(self.method.request_desc, var.dotted)
            leaf = fields[-1]
            if leaf.type != FieldDescriptor.TYPE_STRING or is_repeated(leaf):
                return None
            if any(message_name(p).startswith("google.protobuf.") for p in fields[:-1]):
                return None
            if len(self.template.variables) > 1 and any(f.containing_oneof for f in fields):
                return None  # two values in one oneof are a 400 the mapping must raise
            chains.append((var.dotted, tuple(field.name for field in fields)))
        if len({names for _, names in chains}) != len(chains):
            return None  # one field named twice (by proto and JSON name)
        return tuple(chains)

    def path_fields(self) -> tuple[str, ...]:
        return tuple(v.dotted for v in self.template.variables)

    def specificity(self) -> tuple[int, int, int]:
        return (
            1 if self.template.verb else 0,
            self.template.literal_count,
            0 if self.template.has_deep_wildcard else 1,
        )


def method_info(service: str, method: MethodDescriptor) -> MethodInfo:
    options = method.GetOptions()
    policy = options_pb2.MethodPolicy()
    extension: Any = options_pb2.policy
    if options.HasExtension(extension):
        policy = options.Extensions[extension]
    deadline = policy.default_deadline.seconds + policy.default_deadline.nanos / 1e9
    return MethodInfo(
        service=service,
        descriptor=method,
        request_class=message_factory.GetMessageClass(method.input_type),
        response_class=message_factory.GetMessageClass(method.output_type),
        success_status=policy.http_success_status or 200,
        default_deadline=deadline if deadline > 0 else None,
        cursor_request_field=policy.stream_cursor.request_field,
        cursor_response_field=policy.stream_cursor.response_field,
        scopes=tuple(policy.scopes),
    )


def build_routes(services: Iterable[str]) -> list[Route]:
    """Routes for every http-annotated method of the named services."""
    pool = descriptor_pool.Default()
    routes: list[Route] = []
    for service_name in services:
        try:
            service = pool.FindServiceByName(service_name)
        except KeyError:
            raise RuleError(
                f"service {service_name} is not in the descriptor pool; import its _pb2 module"
            ) from None
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            info = method_info(service_name, method)
            rule = options.Extensions[annotations_pb2.http]
            routes.extend(routes_for_rule(info, rule))
    _check_ambiguity(routes)
    return routes


def routes_for_rule(info: MethodInfo, rule: http_pb2.HttpRule) -> list[Route]:
    """The routes of one rule and its additional bindings (RuleError when invalid)."""
    routes = [_route_of(info, rule, 0)]
    for index, extra in enumerate(rule.additional_bindings, start=1):
        if extra.additional_bindings:
            raise RuleError(f"{info.grpc_path}: additional_bindings cannot nest")
        routes.append(_route_of(info, extra, index))
    return routes


def _route_of(info: MethodInfo, rule: http_pb2.HttpRule, index: int) -> Route:
    where = f"{info.grpc_path} (binding {index})"
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise RuleError(f"{where}: the http rule sets no method (get/put/post/delete/patch)")
    if kind == "custom":
        verb, path = rule.custom.kind.upper(), rule.custom.path
        if not verb:
            raise RuleError(f"{where}: custom pattern has no kind")
    else:
        verb, path = kind.upper(), getattr(rule, kind)
    try:
        template = parse_template(path)
    except TemplateError as exc:
        raise RuleError(f"{where}: {exc}") from None
    request = info.request_desc
    for var in template.variables:
        _check_path_field(where, request, var.dotted)
    body = rule.body
    if body and verb in _BODYLESS:
        raise RuleError(f"{where}: {verb} cannot have a body (body: {body!r})")
    if info.client_streaming and not body:
        raise RuleError(f"{where}: a client-streaming method needs a body")
    if body and body != "*":
        field = request.fields_by_name.get(body)
        if field is None:
            raise RuleError(f"{where}: body {body!r} is not a field of {request.full_name}")
        for var in template.variables:
            if var.dotted == body:
                raise RuleError(f"{where}: field {body!r} is both the body and a path variable")
    response_body = rule.response_body
    if response_body:
        if info.server_streaming and info.returns_http_body:
            raise RuleError(f"{where}: response_body cannot select from google.api.HttpBody")
        if info.response_desc.fields_by_name.get(response_body) is None:
            raise RuleError(
                f"{where}: response_body {response_body!r} is not a field of "
                f"{info.response_desc.full_name}"
            )
    return Route(verb, template, body, response_body, info, index)


def _check_path_field(where: str, request: Descriptor, dotted: str) -> None:
    try:
        fields = resolve_path(request, dotted)
    except KeyError as exc:
        raise RuleError(f"{where}: path variable {dotted!r}: {exc.args[0]}") from None
    for parent in fields[:-1]:
        if is_repeated(parent) or parent.type != FieldDescriptor.TYPE_MESSAGE:
            raise RuleError(f"{where}: path variable {dotted!r} crosses a non-message field")
    leaf = fields[-1]
    if is_repeated(leaf):
        raise RuleError(f"{where}: path variable {dotted!r} is a repeated field")
    if leaf.type == FieldDescriptor.TYPE_MESSAGE and message_name(leaf) not in SCALAR_WKTS:
        raise RuleError(f"{where}: path variable {dotted!r} is a message, not a scalar")


def _check_ambiguity(routes: Sequence[Route]) -> None:
    seen: dict[tuple[str, str], Route] = {}
    for route in routes:
        key = (route.http_method, route.template.shape())
        other = seen.get(key)
        if other is not None:
            raise RuleError(
                f"{route.method.grpc_path} and {other.method.grpc_path} both bind "
                f"{route.http_method} {route.template.source} (ambiguous)"
            )
        seen[key] = route


class Router:
    """Finds the route for a method and raw path (most specific match first).

    Routes are bucketed by their second path segment when it is a literal (the
    collection in `/v1/documents/...`), so a request tries the routes of its own
    collection and the few without such a literal, not every route of every
    service; the order within a bucket is the global specificity order."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = sorted(routes, key=lambda r: r.specificity(), reverse=True)
        keyed = {route: _bucket_key(route.template) for route in self.routes}
        self._buckets = {
            key: [r for r in self.routes if keyed[r] in (key, None)]
            for key in {k for k in keyed.values() if k is not None}
        }
        self._unkeyed = [r for r in self.routes if keyed[r] is None]

    def _candidates(self, raw_path: str) -> list[Route]:
        parts = raw_path.split("/", 3)
        if len(parts) < 3:
            return self.routes
        key = unquote(parts[2])
        if ":" in key:  # possibly `/v1/things:verb`: the literal is before the verb
            return self.routes
        return self._buckets.get(key, self._unkeyed)

    def match(self, http_method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        candidates = self._candidates(raw_path)
        if ":" not in raw_path.rpartition("/")[2]:
            # No custom verb can match, so the first route of this method that
            # matches is the answer; the full pass below is for verbs, 404 and 405.
            for route in candidates:
                if route.http_method == http_method:
                    values = route.template.match(raw_path)
                    if values is not None:
                        return route, values
        matched: list[tuple[Route, dict[str, str]]] = []
        for route in candidates:
            values = route.template.match(raw_path)
            if values is not None:
                matched.append((route, values))
        if any(r.template.verb for r, _ in matched):
            # `/x/{id}:cancel` also matches a verb-less `/x/{id}` with id "…:cancel";
            # the custom method is what the caller meant.
            matched = [(r, v) for r, v in matched if r.template.verb]
        if not matched:
            raise not_found(raw_path)
        for route, values in matched:
            if route.http_method == http_method:
                return route, values
        raise method_not_allowed(http_method, raw_path, [r.http_method for r, _ in matched])


def _bucket_key(template: PathTemplate) -> str | None:
    """The literal every path matching `template` has as its second segment, if any."""
    segments = template.segments
    if len(segments) < 2 or segments[0].kind is SegmentKind.DEEP_WILDCARD:
        return None
    second = segments[1]
    return second.literal if second.kind is SegmentKind.LITERAL else None

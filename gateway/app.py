"""The gateway's one factory: `create_app(config, backends)` wires routes from
descriptors, the transcoder, OpenAPI (3.1, and 3.0 for older tools), the /docs
Swagger UI, health/readiness/metrics, CORS, gzip.

    from gateway.app import create_app
    from gateway.config import GatewayConfig
    app = create_app(GatewayConfig.from_settings(Settings.from_env()))

`app_from_env` is the import-string factory uvicorn uses for several workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from google.protobuf import descriptor_pool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from gateway.a2a import a2a_routes
from gateway.backends import Backends
from gateway.comments import Comments
from gateway.config import GatewayConfig
from gateway.docs import SwaggerDocs
from gateway.mcp_http import McpEndpoint
from gateway.metrics import GatewayMetrics
from gateway.middleware import Compression, Cors, TranscodeUnrouted
from gateway.openapi import build_openapi
from gateway.openapi30 import downgrade
from gateway.routing import Router, build_routes
from gateway.streaming import NDJSON, StreamOptions
from gateway.tls import RefuseTokensOverPlaintext
from gateway.transcoder import Transcoder
from services.platform import telemetry

ALLOWED_HEADERS = (
    "authorization",
    "content-type",
    "if-match",
    "idempotency-key",
    "last-event-id",
    "traceparent",
    "tracestate",
    "x-request-id",
    "grpc-timeout",
    "x-timeout",
)
EXPOSED_HEADERS = ("x-request-id", "etag", "retry-after", "www-authenticate")


def create_app(config: GatewayConfig, backends: Mapping[str, str] | None = None) -> Starlette:
    """Builds the gateway for the services in `backends` (full name → address;
    `config.backends` when omitted). Invalid http rules raise `RuleError` here."""
    config.import_proto_modules()
    addresses = dict(config.backends if backends is None else backends)
    routes = build_routes(addresses)
    descriptor_set = Path(config.descriptor_set) if config.descriptor_set else None
    comments = Comments.from_path(
        descriptor_set if descriptor_set and descriptor_set.exists() else None
    )
    document = build_openapi(routes, comments, title=config.title)
    openapi = json.dumps(document).encode()
    openapi30 = json.dumps(downgrade(document)).encode()
    docs = SwaggerDocs(config.title)
    metrics = GatewayMetrics()
    channels = Backends(addresses, config.dialer)
    transcoder = Transcoder(
        Router(routes),
        channels,
        metrics,
        max_body_bytes=config.max_body_bytes,
        max_line_bytes=config.max_line_bytes,
        stream_options=StreamOptions(
            heartbeat_seconds=config.heartbeat_seconds,
            first_message_seconds=config.first_message_seconds,
            emit_unpopulated=config.emit_unpopulated,
        ),
        credentials=config.credentials,
    )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        names = sorted(addresses)
        statuses = await asyncio.gather(
            *(channels.check(name, config.health_timeout_seconds) for name in names)
        )
        backends_state = dict(zip(names, statuses, strict=True))
        ready = all(status == "SERVING" for status in statuses)
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "backends": backends_state},
            status_code=200 if ready else 503,
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    async def openapi_endpoint(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    async def openapi30_endpoint(request: Request) -> Response:
        return Response(openapi30, media_type="application/json")

    mcp = McpEndpoint(
        channels,
        comments,
        descriptor_pool.Default(),
        config.jwt_issuer,
        max_body_bytes=config.max_body_bytes,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with mcp.running():
            yield
        await channels.close()

    # Outermost: a token sent over plain HTTP goes nowhere (gateway/tls.py).
    refuse_plaintext = [Middleware(RefuseTokensOverPlaintext)] if config.tokens_need_tls else []
    http_routes = [
        HttpRoute("/healthz", healthz, methods=["GET"]),
        HttpRoute("/readyz", readyz, methods=["GET"]),
        HttpRoute("/metrics", metrics_endpoint, methods=["GET"]),
        HttpRoute("/openapi.json", openapi_endpoint, methods=["GET"]),
        HttpRoute("/openapi-3.0.json", openapi30_endpoint, methods=["GET"]),
        *docs.routes(),
        *mcp.routes(),
        *a2a_routes(channels, config.base_url, config.max_body_bytes),
    ]
    app = Starlette(
        routes=http_routes,
        middleware=[
            *refuse_plaintext,
            Middleware(
                Cors,
                allow_origins=list(config.cors_origins),
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=list(ALLOWED_HEADERS),
                expose_headers=list(EXPOSED_HEADERS),
                max_age=600,
            ),
            Middleware(
                Compression,
                minimum_size=config.gzip_min_bytes,
                exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, NDJSON),
            ),
            Middleware(TranscodeUnrouted, routes=http_routes, transcoder=transcoder),
        ],
        lifespan=lifespan,
    )
    app.router.default = transcoder
    if telemetry.is_configured():
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        # A server span per request, continuing the caller's traceparent; the
        # per-message receive/send spans would add only volume.
        app.add_middleware(OpenTelemetryMiddleware, exclude_spans=["receive", "send"])
    app.state.routes = routes
    app.state.backends = channels
    app.state.metrics = metrics
    return app


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory gateway.app:app_from_env` (one per worker)."""
    from services.platform.config import Settings

    settings = Settings.from_env()
    telemetry.configure_tracing("gateway", settings)
    return create_app(GatewayConfig.from_settings(settings))

"""Platform-wide Prometheus metrics: RED per RPC, build info, rate-limit rejections.

Each service's domain metrics live in its own `metrics.py`; every name starts with
`protomesh_`, carries its base unit and ends in `_total` when it is a counter.
Labels stay bounded: never a tenant, user, document or task id."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPC_REQUESTS = Counter(
    "protomesh_rpc_requests_total",
    "RPCs handled, by method and status code.",
    ["service", "method", "code"],
)
RPC_DURATION = Histogram(
    "protomesh_rpc_duration_seconds",
    "RPC handling time in seconds, by method.",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

BUILD_INFO = Gauge(
    "protomesh_build_info",
    "Always 1; the labels say which process (service, task-worker, gateway) runs which version.",
    ["service", "version"],
)
RATE_LIMIT_REJECTIONS = Counter(
    "protomesh_rate_limit_rejections_total",
    "Calls shed with RESOURCE_EXHAUSTED by the per-tenant limits, by service and limit "
    "(a rate-limit class such as read or search, or in_flight for the concurrency cap).",
    ["service", "class"],
)


def version() -> str:
    """The installed protomesh version ("unknown" outside an installation)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("protomesh")
    except PackageNotFoundError:
        return "unknown"

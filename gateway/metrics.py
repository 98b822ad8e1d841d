"""The gateway's own RED metrics and build info, in a registry owned by one app instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.platform.metrics import version

UNMATCHED = "unmatched"


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "protomesh_gateway_requests",
            "HTTP requests answered by the gateway, by route template, method and status.",
            ("route", "method", "code"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "protomesh_gateway_request_duration_seconds",
            "Time from request to the end of the response (streams: until they end).",
            ("route", "method"),
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        Gauge(
            "protomesh_build_info",
            "Always 1; the labels say which process runs which version.",
            ("service", "version"),
            registry=self.registry,
        ).labels("gateway", version()).set(1)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, code: int, seconds: float) -> None:
        key = (route, method, code)
        children = self._children.get(key)
        if children is None:
            # Label lookups cost more than the update: done once per label set
            # (no more entries than the metrics themselves hold).
            children = self._children[key] = (
                self.requests.labels(route, method, str(code)),
                self.duration.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

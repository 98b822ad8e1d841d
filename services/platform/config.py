"""The configuration tree: every `PROTOMESH_*` variable, typed, in one place.

Each process reads it once at start-up (`Settings.from_env()`) and passes the
result down; nothing else in the code reads the environment. A field of
`Settings` is `PROTOMESH_` + its name in capitals; a section (`gateway`, `tls`, `task_worker`,
`embedder`, `generator`, `client`, `bench`) adds its prefix (`PROTOMESH_GATEWAY_PORT`), and a
field may name its variable outright (`PROTOMESH_EMBEDDER`, `PROTOMESH_TOKEN`).
Every setting has a default that works on a developer machine; the README's
table and `protomesh config` are generated from the docs written here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

PREFIX = "PROTOMESH_"
REPLICA_PORT_STRIDE = 100  # replica i of a service listens on its port + 100·i
REPLICA_METRICS_STRIDE = 10  # and serves /metrics on its metrics port + 10·i


@dataclass(frozen=True)
class Check:
    """What a setting's value must be, beyond its type: `expected` says it to people
    (in the error report), `accepts` decides."""

    expected: str
    accepts: Callable[[Any], bool]


def one_of(*choices: str) -> Check:
    """One of `choices`, compared case-insensitively."""
    return Check(f"one of {', '.join(choices)}", lambda value: str(value).lower() in choices)


def _rate_pairs(value: Any) -> bool:
    pairs = [pair.partition("=") for pair in str(value).split(",") if pair.strip()]
    return all(sep and name.strip() and number.strip().isdigit() for name, sep, number in pairs)


PORT = Check("an integer port 1-65535", lambda value: 1 <= value <= 65535)
PORT_OR_ZERO = Check("an integer port 1-65535, or 0 for none", lambda value: 0 <= value <= 65535)
AT_LEAST_ONE = Check("an integer of at least 1", lambda value: value >= 1)
NOT_NEGATIVE = Check("an integer of at least 0", lambda value: value >= 0)
SECONDS = Check("a number of seconds greater than 0", lambda value: value > 0)
SECONDS_OR_ZERO = Check("a number of seconds, 0 or more", lambda value: value >= 0)
RATES = Check("comma-separated CLASS=PER_MINUTE pairs (whole numbers)", _rate_pairs)


def setting(default: Any, doc: str, env: str = "", check: Check | None = None) -> Any:
    """A documented field; `env` names its variable when the field name does not;
    `check` says what its value must be beyond its type."""
    metadata = {"doc": doc, "env": env, "check": check}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(kind: type, prefix: str, doc: str) -> Any:
    """A nested group of settings read from `PROTOMESH_<prefix><FIELD>`."""
    return field(default_factory=kind, metadata={"section": prefix, "doc": doc})


@dataclass(frozen=True)
class GatewaySettings:
    """The HTTP/JSON gateway (`python -m gateway`)."""

    host: str = setting("", "Address the gateway binds; `PROTOMESH_HOST` when empty.")
    port: int = setting(8080, "HTTP gateway port.", check=PORT)
    workers: int = setting(1, "Gateway worker processes (uvicorn workers).", check=AT_LEAST_ONE)
    public_url: str = setting(
        "", "URL clients reach the gateway at (agent card, MCP); `http://HOST:PORT` when empty."
    )
    cors_origins: tuple[str, ...] = setting((), "Origins allowed by CORS (comma-separated).")
    max_body_bytes: int = setting(
        4 * 1024 * 1024, "Largest request body accepted.", check=AT_LEAST_ONE
    )
    max_line_bytes: int = setting(
        4 * 1024 * 1024, "Largest NDJSON line of a client-streaming body.", check=AT_LEAST_ONE
    )
    heartbeat_seconds: float = setting(
        15.0,
        "Idle time after which a server stream sends a heartbeat (SSE comment).",
        check=SECONDS,
    )
    first_message_seconds: float = setting(
        0.25,
        "How long a server stream waits for its first message before sending headers.",
        check=SECONDS_OR_ZERO,
    )
    emit_unpopulated: bool = setting(True, "JSON responses include fields left at defaults.")
    health_timeout_seconds: float = setting(
        1.0, "Per-backend deadline of `/readyz`.", check=SECONDS
    )
    gzip_min_bytes: int = setting(
        1024, "Smallest response body compressed with gzip.", check=NOT_NEGATIVE
    )
    title: str = setting("protomesh", "Title of the OpenAPI document.")
    backends: dict[str, str] = setting(
        {},
        "Services to serve and where (`pkg.Service=host:port,…`); the four protomesh "
        "services at their addresses when empty.",
    )
    proto_modules: tuple[str, ...] = setting(
        (), "Modules that register the served services' descriptors; protomesh's when empty."
    )
    descriptor_set: str = setting(
        "", "Descriptor set with source comments (for OpenAPI); the generated one when empty."
    )
    require_tls: bool = setting(
        False,
        "Refuse requests that carry a token (`Authorization`) unless the caller reached "
        "the gateway over HTTPS — directly, or through a proxy in `FORWARDED_ALLOW_IPS` "
        "that says `X-Forwarded-Proto: https`; always on when the gateway serves TLS "
        "(`PROTOMESH_TLS_CERT`).",
    )
    forwarded_allow_ips: tuple[str, ...] = setting(
        (),
        "Proxies (IPs or CIDRs, comma-separated) whose `X-Forwarded-Proto`/`-For` headers "
        "the gateway believes; none when empty.",
    )


@dataclass(frozen=True)
class TlsSettings:
    """TLS on every hop: the gRPC ports, the gateway, and every client of them
    (docs/security.md). Off when all are empty; when any is set, this process
    serves only TLS and dials only TLS."""

    cert: str = setting(
        "",
        "PEM certificate chain of this process: served on its gRPC port (and the gateway's "
        "HTTPS), and presented as its client certificate when a server asks (mTLS).",
    )
    key: str = setting("", "PEM private key of `PROTOMESH_TLS_CERT`.")
    ca: str = setting(
        "",
        "PEM bundle of the CAs that clients verify servers with and servers verify client "
        "certificates with; the system's roots when empty.",
    )
    client_auth: str = setting(
        "none",
        "`none`, or `require`: mutual TLS — servers refuse a client without a certificate "
        "from `PROTOMESH_TLS_CA`, and clients present `PROTOMESH_TLS_CERT`.",
        check=one_of("none", "require"),
    )
    server_name: str = setting(
        "",
        "Name clients check servers' certificates against instead of the target's host "
        "(`grpc.ssl_target_name_override`); the first address's host when empty.",
    )

    @property
    def enabled(self) -> bool:
        """Whether this process speaks TLS (and nothing else) on every hop."""
        return bool(self.cert or self.key or self.ca or self.client_auth != "none")


@dataclass(frozen=True)
class WorkerSettings:
    """Task worker processes (`python -m services.task.worker`)."""

    count: int = setting(
        4,
        "Tasks one worker process runs at a time (`--count` overrides).",
        env="PROTOMESH_TASK_CONCURRENCY",
        check=AT_LEAST_ONE,
    )
    lease_seconds: float = setting(
        30.0, "Lease on a claimed task; renewed by heartbeats.", check=SECONDS
    )
    heartbeat_seconds: float = setting(
        10.0, "How often a running task renews its lease.", check=SECONDS
    )
    poll_seconds: float = setting(
        5.0, "Longest wait for new work between notifications.", check=SECONDS
    )
    reap_seconds: float = setting(
        5.0, "How often expired leases are returned to the queue.", check=SECONDS
    )
    backoff_base_seconds: float = setting(
        1.0, "First retry delay of a failed attempt.", check=SECONDS_OR_ZERO
    )
    backoff_cap_seconds: float = setting(
        60.0, "Longest retry delay (full jitter below it).", check=SECONDS_OR_ZERO
    )
    cancel_grace_seconds: float = setting(
        5.0, "How long a cancelled task may clean up before it is stopped.", check=SECONDS_OR_ZERO
    )
    shutdown_grace_seconds: float = setting(
        10.0,
        "How long SIGTERM waits for running tasks before releasing their leases.",
        check=SECONDS_OR_ZERO,
    )


@dataclass(frozen=True)
class EmbedderSettings:
    """The search index's embedding model."""

    kind: str = setting(
        "minilm",
        "`minilm` (offline, default), `openai` (any `/v1/embeddings` endpoint) or `hashing` "
        "(tests only).",
        env="PROTOMESH_EMBEDDER",
        check=one_of("minilm", "openai", "hashing"),
    )
    base_url: str = setting("", "`openai` embedder: base URL (required).")
    model: str = setting("", "`openai` embedder: model name (required).")
    dimensions: int = setting(
        384, "`openai` embedder: vector width (the index holds 384).", check=AT_LEAST_ONE
    )
    api_key: str = setting("", "`openai` embedder: bearer API key.")
    batch_size: int = setting(
        0, "Texts per call; 0 = the model's default (MiniLM 32, HTTP 64).", check=NOT_NEGATIVE
    )
    timeout_seconds: float = setting(10.0, "`openai` embedder: per-request timeout.", check=SECONDS)
    max_attempts: int = setting(
        4, "`openai` embedder: attempts per batch (backoff between).", check=AT_LEAST_ONE
    )


@dataclass(frozen=True)
class GeneratorSettings:
    """The answer generator the task workers use."""

    base_url: str = setting(
        "",
        "OpenAI-compatible chat-completions base URL; the offline extractive generator when empty.",
    )
    model: str = setting("gpt-4o-mini", "Model name sent to the endpoint.")
    api_key: str = setting("", "Bearer API key for the endpoint.")
    timeout_seconds: float = setting(60.0, "Per-request timeout.", check=SECONDS)
    max_retries: int = setting(
        2, "Retries of a failed request (backoff between).", check=NOT_NEGATIVE
    )


@dataclass(frozen=True)
class ClientSettings:
    """The `protomesh` CLI as a client of a running system."""

    token: str = setting(
        "",
        "Bearer token for CLI calls; a dev token from the local key when empty.",
        env="PROTOMESH_TOKEN",
    )
    tenant: str = setting("default", "Tenant of the CLI's dev token.", env="PROTOMESH_TENANT")
    user: str = setting("dev", "User of the CLI's dev token.", env="PROTOMESH_USER")


@dataclass(frozen=True)
class BenchSettings:
    """`bench/` scripts."""

    cache: Path = setting(
        Path("~/.cache/protomesh-bench"),
        "Where labelled corpora (Debian documentation packages) are unpacked.",
        env="PROTOMESH_BENCH_CACHE",
    )


@dataclass(frozen=True)
class Settings:
    """All runtime settings; a field is read from `PROTOMESH_` + its name in capitals."""

    data_dir: Path = field(
        default=Path(".data"),
        metadata={"doc": "Embedded PostgreSQL data, dev keys and JWKS live here."},
    )
    database_url: str = field(
        default="",
        metadata={
            "doc": "Owner DSN of an external PostgreSQL with pgvector (migrations run as this "
            "user); empty starts the embedded server in the data dir."
        },
    )
    app_database_url: str = field(
        default="",
        metadata={
            "doc": "DSN the services use (the NOBYPASSRLS application role); derived from "
            "`DATABASE_URL` with user `protomesh_app` when empty."
        },
    )
    direct_database_url: str = field(
        default="",
        metadata={
            "doc": "DSN (same role) for the connections that keep session state and so cannot "
            "share a transaction-mode pooler: each process's LISTEN connection and the task "
            "workers' sessions; `APP_DATABASE_URL` when empty. Set it to the primary when "
            "`APP_DATABASE_URL` points at PgBouncer (docs/scaling.md)."
        },
    )
    search_read_database_url: str = field(
        default="",
        metadata={
            "doc": "DSN search queries read from (a streaming replica, or a pooler in front "
            "of replicas); `APP_DATABASE_URL` when empty. `min_sequence` waits until the "
            "index this DSN reads has applied the sequence."
        },
    )
    db_statement_cache_size: int = field(
        default=100,
        metadata={
            "check": NOT_NEGATIVE,
            "doc": "Prepared statements asyncpg caches per pooled connection; 0 when "
            "`APP_DATABASE_URL` (or the search read DSN) goes through PgBouncer in transaction "
            "mode without `max_prepared_statements` (PgBouncer < 1.21 has none).",
        },
    )
    db_pool_min: int = field(
        default=2, metadata={"check": NOT_NEGATIVE, "doc": "Minimum connections per pool."}
    )
    db_pool_max: int = field(
        default=10, metadata={"check": AT_LEAST_ONE, "doc": "Maximum connections per pool."}
    )
    host: str = field(default="127.0.0.1", metadata={"doc": "Address every server binds."})
    document_port: int = field(
        default=50051, metadata={"check": PORT, "doc": "DocumentService gRPC port."}
    )
    search_port: int = field(
        default=50052, metadata={"check": PORT, "doc": "SearchService gRPC port."}
    )
    task_port: int = field(default=50053, metadata={"check": PORT, "doc": "TaskService gRPC port."})
    cost_port: int = field(default=50054, metadata={"check": PORT, "doc": "CostService gRPC port."})
    document_address: str = field(
        default="",
        metadata={
            "doc": "Where clients reach DocumentService, e.g. "
            "`dns:///documents-headless:50051`; `HOST:DOCUMENT_PORT` when empty."
        },
    )
    search_address: str = field(default="", metadata={"doc": "Same, for SearchService."})
    task_address: str = field(default="", metadata={"doc": "Same, for TaskService."})
    cost_address: str = field(default="", metadata={"doc": "Same, for CostService."})
    replicas: int = field(
        default=1,
        metadata={
            "check": AT_LEAST_ONE,
            "doc": "Processes per service on this machine (`protomesh up --replicas N`): "
            "replica i serves on its port + 100·i, and clients balance calls over all of "
            "them (`ipv4:` targets) unless an `*_ADDRESS` says otherwise.",
        },
    )
    replica: int = field(
        default=0,
        metadata={
            "check": NOT_NEGATIVE,
            "doc": "This process's index among its service's replicas (set by the launcher).",
        },
    )
    health_port: int = field(
        default=0,
        metadata={
            "check": PORT_OR_ZERO,
            "doc": "A plaintext port that serves only `grpc.health.v1` (no token, no data), "
            "for probes that cannot speak TLS, such as the kubelet's gRPC probe; 0 = none. "
            "One service per host (a pod).",
        },
    )
    max_connection_age_seconds: float = field(
        default=30.0,
        metadata={
            "check": SECONDS_OR_ZERO,
            "doc": "Servers close each client connection after this long (GOAWAY; calls in "
            "flight finish), so clients re-resolve and new replicas get traffic; 0 = never.",
        },
    )
    jwks: str = field(
        default="",
        metadata={
            "doc": "JWKS for token verification: a file path or an http(s) URL; "
            "`<data_dir>/jwks.json` (the dev key) when empty."
        },
    )
    jwt_issuer: str = field(default="protomesh-dev", metadata={"doc": "Required `iss` claim."})
    jwt_audience: str = field(default="protomesh", metadata={"doc": "Required `aud` claim."})
    jwt_leeway_seconds: int = field(
        default=30,
        metadata={"check": NOT_NEGATIVE, "doc": "Clock skew tolerated on `exp`, `nbf` and `iat`."},
    )
    service_token: str = field(
        default="",
        metadata={
            "doc": "A fixed internal service token (for deployments without the signing key); "
            "minted from the dev key and refreshed when empty."
        },
    )
    service_token_ttl_seconds: int = field(
        default=3600,
        metadata={"check": AT_LEAST_ONE, "doc": "Lifetime of internal service-identity tokens."},
    )
    health_check_interval_seconds: float = field(
        default=2.0,
        metadata={
            "check": SECONDS,
            "doc": "How often each service checks its database for health.",
        },
    )
    grace_period_seconds: float = field(
        default=10.0,
        metadata={"check": SECONDS_OR_ZERO, "doc": "How long shutdown waits for in-flight RPCs."},
    )
    max_message_bytes: int = field(
        default=20 * 1024 * 1024,
        metadata={"check": AT_LEAST_ONE, "doc": "Largest gRPC message a server accepts."},
    )
    max_document_bytes: int = field(
        default=1024 * 1024,
        metadata={"check": AT_LEAST_ONE, "doc": "Largest document content accepted."},
    )
    log_level: str = field(
        default="info",
        metadata={
            "check": one_of("debug", "info", "warning", "error", "critical"),
            "doc": "debug, info, warning or error.",
        },
    )
    log_format: str = field(
        default="json", metadata={"check": one_of("json", "console"), "doc": "`json` or `console`."}
    )
    otel_exporter: str = field(
        default="off",
        metadata={
            "check": one_of("off", "none", "console", "otlp"),
            "doc": "Tracing: `off` (no instrumentation is installed, zero cost), `console`, or "
            "`otlp` (to `PROTOMESH_OTLP_ENDPOINT`).",
        },
    )
    otlp_endpoint: str = field(
        default="http://127.0.0.1:4317", metadata={"doc": "OTLP/gRPC collector endpoint."}
    )
    metrics_port_base: int = field(
        default=0,
        metadata={
            "check": PORT_OR_ZERO,
            "doc": "Prometheus `/metrics` ports: documents at this port, search +1, tasks +2, "
            "cost +3, task workers +4; 0 disables. `protomesh up` uses 9101.",
        },
    )
    tenant_rate_limits: str = field(
        default="read=60000,write=30000,search=6000,expensive=600,stream=1200,admin=600",
        metadata={
            "check": RATES,
            "doc": "Calls per minute per tenant and rate-limit class, per replica "
            "(`CLASS=N,…`; 0 = unlimited); excess calls get RESOURCE_EXHAUSTED with RetryInfo.",
        },
    )
    tenant_burst_seconds: float = field(
        default=60.0,
        metadata={
            "check": SECONDS_OR_ZERO,
            "doc": "Seconds of a tenant's rate it may spend at once.",
        },
    )
    tenant_max_in_flight: int = field(
        default=256,
        metadata={
            "check": NOT_NEGATIVE,
            "doc": "Calls one tenant may have in flight per replica (0 = unlimited).",
        },
    )
    search_indexer: bool = field(
        default=True,
        metadata={
            "doc": "Run the indexer loop in the search process (`off` on extra replicas that "
            "only serve queries)."
        },
    )
    page_token_secret: str = field(
        default="",
        metadata={
            "doc": "Key that signs page tokens; derived from the dev key when empty. Set the "
            "same value on every replica."
        },
    )

    gateway: GatewaySettings = section(GatewaySettings, "GATEWAY_", "The HTTP/JSON gateway.")
    tls: TlsSettings = section(TlsSettings, "TLS_", "TLS on every hop.")
    task_worker: WorkerSettings = section(WorkerSettings, "TASK_", "Task worker processes.")
    embedder: EmbedderSettings = section(EmbedderSettings, "EMBEDDER_", "The embedding model.")
    generator: GeneratorSettings = section(GeneratorSettings, "GENERATOR_", "Answer generation.")
    client: ClientSettings = section(ClientSettings, "", "The `protomesh` CLI.")
    bench: BenchSettings = section(BenchSettings, "BENCH_", "Benchmarks.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Builds settings from the environment, then applies keyword overrides (CLI
        flags). Raises `ConfigError` listing every bad variable at once."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        settings: Settings = _load(cls, env, PREFIX, problems)
        problems += _consistency(settings)
        if problems:
            raise ConfigError(sorted(problems))
        return dataclasses.replace(
            settings, **{k: v for k, v in overrides.items() if v is not None}
        )

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these settings in a child process (every value
        that differs from its default); `Settings.from_env(s.to_env()) == s`."""
        return {
            v.name: _format(value) for v in variables() if (value := v.value_of(self)) != v.default
        }

    def child_environment(self) -> dict[str, str]:
        """The environment for a child process that must run with exactly these
        settings: this process's, without any `PROTOMESH_*` variable, plus `to_env()`
        (a variable left in this environment could contradict a setting made here)."""
        return environment_without_settings(**self.to_env())

    @property
    def jwks_source(self) -> str:
        return self.jwks or str(self.data_dir / "jwks.json")

    def port_of(self, service: str, replica: int = 0) -> int:
        """The gRPC port of `service`'s replica `replica` on this machine."""
        ports = {
            "document": self.document_port,
            "search": self.search_port,
            "task": self.task_port,
            "cost": self.cost_port,
        }
        return ports[service] + REPLICA_PORT_STRIDE * replica

    def metrics_port_of(self, component: str, replica: int = 0) -> int:
        """The Prometheus port of a process (0 when disabled)."""
        if not self.metrics_port_base:
            return 0
        offsets = {"document": 0, "search": 1, "task": 2, "cost": 3, "task-worker": 4}
        return self.metrics_port_base + offsets[component] + REPLICA_METRICS_STRIDE * replica

    def address_of(self, service: str) -> str:
        """Target for clients of `service`: its override, else this host and its port,
        or, with several replicas, an `ipv4:` list of every replica's port. A bind-all
        host (0.0.0.0) is reached on the loopback address."""
        addresses = self.replica_addresses(service)
        return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)

    def replica_addresses(self, service: str) -> list[str]:
        """Where each of `service`'s replicas is: its `*_ADDRESS` override as one
        target, else `host:port` of every replica on this machine."""
        override: str = getattr(self, f"{service}_address")
        if override:
            return [override]
        return [self.replica_address(service, i) for i in range(max(1, self.replicas))]

    def replica_address(self, service: str, replica: int) -> str:
        return f"{reachable(self.host)}:{self.port_of(service, replica)}"

    @property
    def gateway_url(self) -> str:
        """Where a local client reaches the gateway (not its public URL): https when
        it serves TLS."""
        scheme = "https" if self.tls.enabled else "http"
        return f"{scheme}://{reachable(self.gateway.host or self.host)}:{self.gateway.port}"


def reachable(host: str) -> str:
    """The address to dial for a server bound to `host`: a bind-all address is
    reached on the loopback one."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104


@dataclass(frozen=True)
class Variable:
    """One environment variable of the tree."""

    name: str
    path: str  # dotted attribute path from Settings, e.g. "gateway.port"
    kind: Any
    default: Any
    doc: str
    section: str  # "" for top-level settings

    @property
    def default_text(self) -> str:
        return _format(self.default)

    @property
    def secret(self) -> bool:
        """Never printed: keys, tokens and DSNs (which may hold a password)."""
        return self.name.endswith(("_KEY", "_TOKEN", "_SECRET", "DATABASE_URL"))

    def value_of(self, settings: Settings) -> Any:
        value: Any = settings
        for attribute in self.path.split("."):
            value = getattr(value, attribute)
        return value

    def value_text(self, settings: Settings) -> str:
        """The value in effect in `settings`, secrets masked."""
        value = self.value_of(settings)
        if self.secret:
            return "(set, hidden)" if value else ""
        return _format(value)


def variables() -> list[Variable]:
    """Every variable in the tree, in declaration order."""
    return list(_walk(Settings, PREFIX, "", ""))


def _walk(cls: type, prefix: str, path: str, section_doc: str) -> Iterator[Variable]:
    hints = get_type_hints(cls)
    defaults = cls()
    for f in fields(cls):
        if "section" in f.metadata:
            inner = prefix + f.metadata["section"]
            yield from _walk(hints[f.name], inner, f"{path}{f.name}.", f.metadata["doc"])
            continue
        name = f.metadata.get("env") or prefix + f.name.upper()
        default = getattr(defaults, f.name)
        yield Variable(name, path + f.name, hints[f.name], default, f.metadata["doc"], section_doc)


class ConfigError(ValueError):
    """Every bad `PROTOMESH_*` value found at once: `problems` holds one line per
    variable, naming it with its value and the expected form
    (`PROTOMESH_DOCUMENT_PORT='abc': expected an integer port 1-65535`); str()
    joins them with "; " so one message says everything wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _load(cls: type, env: Mapping[str, str], prefix: str, problems: list[str]) -> Any:
    """`cls` from `env`; a bad value is added to `problems` and its field keeps its
    default, so every problem is found in one pass."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if "section" in f.metadata:
            values[f.name] = _load(hints[f.name], env, prefix + f.metadata["section"], problems)
            continue
        name = f.metadata.get("env") or prefix + f.name.upper()
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        check: Check | None = f.metadata.get("check")
        try:
            value = _parse(hints[f.name], raw)
        except ValueError:
            expected = check.expected if check else _expected_form(hints[f.name])
            problems.append(f"{name}={raw!r}: expected {expected}")
            continue
        if check is not None and not check.accepts(value):
            problems.append(f"{name}={raw!r}: expected {check.expected}")
            continue
        values[f.name] = value
    return cls(**values)


def _consistency(settings: Settings) -> list[str]:
    """Problems no single variable shows: settings that only work together."""
    problems: list[str] = []
    embedder = settings.embedder
    if embedder.kind.lower() == "openai":
        missing = [
            name
            for name, value in (
                ("PROTOMESH_EMBEDDER_BASE_URL", embedder.base_url),
                ("PROTOMESH_EMBEDDER_MODEL", embedder.model),
            )
            if not value
        ]
        if missing:
            problems.append(f"PROTOMESH_EMBEDDER=openai needs {' and '.join(missing)}")
    if settings.db_pool_min > settings.db_pool_max:
        problems.append(
            f"PROTOMESH_DB_POOL_MIN={settings.db_pool_min} exceeds "
            f"PROTOMESH_DB_POOL_MAX={settings.db_pool_max}"
        )
    return problems


_FORMS: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    bool: "on or off (also true/false, yes/no, 1/0)",
    tuple: "a comma-separated list",
    dict: "comma-separated KEY=VALUE pairs",
}


def _expected_form(kind: Any) -> str:
    return _FORMS.get(typing.get_origin(kind) or kind, getattr(kind, "__name__", str(kind)))


def _parse(kind: Any, raw: str) -> Any:
    """`raw` as a value of `kind`; ValueError when it is not one."""
    origin = typing.get_origin(kind)
    if kind is bool:
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ValueError(raw)
    if kind is Path:
        return Path(raw).expanduser()
    if origin is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if origin is dict:
        pairs = [part.split("=", 1) for part in raw.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(raw)
        return {key.strip(): value.strip() for key, value in pairs}
    if kind is float:
        number = float(raw)
        if not math.isfinite(number):
            raise ValueError(raw)
        return number
    return kind(raw)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def documented_settings() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for `protomesh config`."""
    return [(v.name, v.default_text, v.doc) for v in variables()]


def markdown_table() -> str:
    """The README's configuration table."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for v in variables():
        default = f"`{v.default_text}`" if v.default_text else "(empty)"
        lines.append(f"| `{v.name}` | {default} | {v.doc} |")
    return "\n".join(lines) + "\n"


def environment_without_settings(**extra: str) -> dict[str, str]:
    """This process's environment without any `PROTOMESH_*` variable, plus `extra`:
    for a child process whose settings must come only from its caller."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    return {**inherited, **extra}


if __name__ == "__main__":
    sys.stdout.write(markdown_table())

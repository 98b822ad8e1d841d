"""Fault-injection fixtures: a database of the suite's own, the four real services
in this process on real gRPC (their servicers kept for observation), service and
worker processes started the way `protomesh up` starts them, and a local
OpenAI-compatible model provider that can be switched down, slow or stalled.

The model provider is the only fake: everything else is the product itself."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cli.launcher import free_ports
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from services.cost.service import make_spec as cost_spec
from services.document.feed import WatchOptions
from services.document.service import make_spec as document_spec
from services.platform.config import Settings, WorkerSettings
from services.platform.resilience import CircuitBreaker
from services.platform.server import ServiceServer, ServiceSpec
from services.search.embedders import HashingEmbedder
from services.search.service import make_spec as search_spec
from services.task.generation import Generator
from services.task.openai_compat import OpenAICompatibleGenerator
from services.task.runner import Worker
from services.task.service import SPEC as TASK_SPEC
from services.task.worker import build_worker, create_worker_pool
from tests.conftest import Mint, bearer, eventually, running
from tests.integration.gateway.harness import live_server
from tests.integration.search.conftest import FAST_INDEXER, fresh_database
from tests.integration.task.conftest import FAST

Metadata = tuple[tuple[str, str], ...]
PRICED_MODEL = "gpt-4o-mini"  # in the shipped price book, so metering admits it


# -- a model provider that fails on demand ----------------------------------------------


@dataclass
class ModelProvider:
    """OpenAI-compatible `/chat/completions` (streamed) and `/embeddings`.

    `mode`: "up" answers; "down" answers 503; "slow" waits `slow_seconds` before
    answering (beyond the client's timeout); "stall" streams the first chunk of a
    chat answer, then holds the stream open until `mode` changes."""

    url: str = ""
    _mode: str = "up"
    slow_seconds: float = 5.0
    answer: str = "Otters hold hands while they sleep."
    usage: tuple[int, int] = (120, 30)
    chat_requests: int = 0
    embedding_requests: int = 0
    stalled: asyncio.Event = field(default_factory=asyncio.Event)
    unstalled: asyncio.Event = field(default_factory=asyncio.Event)
    _embedder: HashingEmbedder = field(default_factory=HashingEmbedder)

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self._mode = mode
        if mode != "stall":
            self.unstalled.set()

    def reset(self) -> None:
        self.mode = "up"
        self.chat_requests = 0
        self.embedding_requests = 0
        self.stalled.clear()

    async def _refuse(self) -> Response | None:
        if self.mode == "down":
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        if self.mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        return None

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.chat_requests += 1
        refused = await self._refuse()
        if refused is not None:
            return refused

        async def events() -> AsyncIterator[bytes]:
            words = self.answer.split(" ")
            for i, word in enumerate(words):
                delta = word if i == 0 else " " + word
                chunk = {"choices": [{"index": 0, "delta": {"content": delta}}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                if i == 0 and self.mode == "stall":
                    self.stalled.set()
                    self.unstalled.clear()
                    await self.unstalled.wait()
            usage = {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1]}
            yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        del body
        return StreamingResponse(events(), media_type="text/event-stream")

    async def embeddings(self, request: Request) -> Response:
        body = await request.json()
        self.embedding_requests += 1
        refused = await self._refuse()
        if refused is not None:
            return refused
        vectors = await self._embedder.embed(body["input"])
        data = [{"index": i, "embedding": v} for i, v in enumerate(vectors)]
        return JSONResponse({"data": data, "model": body["model"]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            ]
        )


@pytest.fixture(scope="package")
async def provider_server() -> AsyncIterator[ModelProvider]:
    provider = ModelProvider()
    async with live_server(provider.app()) as url:
        provider.url = f"{url}/v1"
        yield provider
        provider.mode = "up"  # let a stalled stream end so the server can stop


@pytest.fixture
def provider(provider_server: ModelProvider) -> ModelProvider:
    """The model provider, healthy and with zeroed counters."""
    provider_server.reset()
    return provider_server


# -- the system, in this process ----------------------------------------------------------


@dataclass
class System:
    """The four services on one database of their own, each on real gRPC."""

    settings: Settings
    owner_dsn: str
    servers: dict[str, ServiceServer]
    channels: dict[str, grpc.aio.Channel]
    servicers: dict[str, Any]

    @property
    def documents(self) -> doc_grpc.DocumentServiceStub:
        return doc_grpc.DocumentServiceStub(self.channels["document"])

    @property
    def search(self) -> search_grpc.SearchServiceStub:
        return search_grpc.SearchServiceStub(self.channels["search"])

    @property
    def tasks(self) -> task_grpc.TaskServiceStub:
        return task_grpc.TaskServiceStub(self.channels["task"])

    @property
    def cost(self) -> cost_grpc.CostServiceStub:
        return cost_grpc.CostServiceStub(self.channels["cost"])

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.servers[service].port}"

    def environ(self, **extra: str) -> dict[str, str]:
        """The environment of a child process (worker, service) joining this system."""
        settings = self.settings
        return {
            **os.environ,
            "PROTOMESH_DATA_DIR": str(settings.data_dir),
            "PROTOMESH_DATABASE_URL": self.owner_dsn,
            "PROTOMESH_LOG_LEVEL": "warning",
            "PROTOMESH_METRICS_PORT_BASE": "0",
            "PROTOMESH_DOCUMENT_PORT": str(settings.document_port),
            "PROTOMESH_SEARCH_PORT": str(settings.search_port),
            "PROTOMESH_TASK_PORT": str(settings.task_port),
            "PROTOMESH_COST_PORT": str(settings.cost_port),
            **extra,
        }


def observed(spec: ServiceSpec, servicers: dict[str, Any]) -> ServiceSpec:
    """`spec`, keeping the servicer it builds in `servicers[spec.name]`."""
    build = spec.build

    async def keep(runtime: Any) -> Any:
        parts = await build(runtime)
        servicers[spec.name] = parts.servicer
        return parts

    return dataclasses.replace(spec, build=keep)


@pytest.fixture(scope="package")
async def faults_db(migrated: str) -> str:
    """Owner DSN of a database only this suite uses (its queue, feed and sessions)."""
    return await fresh_database(migrated, "faults")


@pytest.fixture(scope="package")
async def system(settings: Settings, faults_db: str) -> AsyncIterator[System]:
    servicers: dict[str, Any] = {}
    local = dataclasses.replace(settings, database_url=faults_db, grace_period_seconds=1.0)
    servers: dict[str, ServiceServer] = {}
    channels: dict[str, grpc.aio.Channel] = {}
    specs = [
        document_spec(WatchOptions(heartbeat_seconds=0.2)),
        cost_spec(sweep_interval_seconds=0.2),
        TASK_SPEC,
        search_spec(lambda: HashingEmbedder(), FAST_INDEXER, run_indexer=True),
    ]
    async with AsyncExitStack() as stack:
        for spec in specs:
            server, channel = await stack.enter_async_context(
                running(observed(spec, servicers), local)
            )
            servers[spec.name] = server
            channels[spec.name] = channel
            # Later services (search's indexer) reach the earlier ones here.
            local = dataclasses.replace(local, **{f"{spec.name}_port": server.port})
        yield System(local, faults_db, servers, channels, servicers)


@pytest.fixture(scope="package")
async def owner(system: System) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the database owner (bypasses row-level security)."""
    conn = await asyncpg.connect(system.owner_dsn)
    yield conn
    await conn.close()


# -- workers ---------------------------------------------------------------------------------

FAST_WORKER = dataclasses.replace(FAST, count=2)  # the task suite's short timings
# The same timing for a worker process (its `task_worker` settings, PROTOMESH_TASK_*).
FAST_WORKER_ENV = {
    f"PROTOMESH_TASK_{name.upper()}": str(getattr(FAST_WORKER, name))
    for name in ("lease_seconds", "heartbeat_seconds", "poll_seconds", "reap_seconds")
}


def generator_for(provider: ModelProvider, **options: Any) -> OpenAICompatibleGenerator:
    """The real OpenAI-compatible client, pointed at the local provider."""
    options.setdefault("breaker", CircuitBreaker("model provider", 5, 30.0))
    return OpenAICompatibleGenerator(provider.url, PRICED_MODEL, **options)


@pytest.fixture(scope="package")
async def worker_pool(system: System) -> AsyncIterator[Any]:
    pool = await create_worker_pool(system.settings, 8)
    yield pool
    await pool.close()


WorkerRunner = Callable[..., Any]


@pytest.fixture
def worker(system: System, worker_pool: Any) -> WorkerRunner:
    """worker(generator, config=FAST_WORKER) → async context manager running one
    worker in this event loop against the system."""

    @asynccontextmanager
    async def run(
        generator: Generator, config: WorkerSettings = FAST_WORKER
    ) -> AsyncIterator[Worker]:
        started, clients = build_worker(worker_pool, system.settings, config, generator)
        started.start()
        try:
            yield started
        finally:
            await started.stop()
            await clients.close()

    return run


# -- helpers ------------------------------------------------------------------------------


def rpc_count(service: str, method: str, code: str) -> float:
    """This process's protomesh_rpc_requests_total for one method and status."""
    value = REGISTRY.get_sample_value(
        "protomesh_rpc_requests_total", {"service": service, "method": method, "code": code}
    )
    return value or 0.0


class Tenant:
    """One tenant's calls on the system."""

    def __init__(self, system: System, mint: Mint, name: str) -> None:
        self.system = system
        self.name = name
        self.token = mint(name)
        self.md: Metadata = bearer(self.token)

    async def create_task(self, type_: str, input: Mapping[str, Any]) -> task_pb.Task:
        task = task_pb.Task(type=type_)
        task.input.update(dict(input))
        created: task_pb.Task = await self.system.tasks.CreateTask(
            task_pb.CreateTaskRequest(task=task), metadata=self.md, timeout=5
        )
        return created

    async def get_task(self, name: str, history_length: int = 0) -> task_pb.Task:
        found: task_pb.Task = await self.system.tasks.GetTask(
            task_pb.GetTaskRequest(name=name, history_length=history_length),
            metadata=self.md,
            timeout=5,
        )
        return found

    async def wait_task(self, name: str, *states: int, within: float = 15.0) -> task_pb.Task:
        last: list[task_pb.Task] = []

        async def reached() -> bool:
            last[:] = [await self.get_task(name)]
            return last[0].status.state in states

        try:
            await eventually(reached, within, what=f"{name} in {states}")
        except AssertionError:
            raise AssertionError(f"{name} did not reach {states}: {last}") from None
        return last[0]


# -- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    """A child process with its combined output in a file."""

    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait(self, within: float) -> int:
        return await asyncio.wait_for(self.process.wait(), within)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@asynccontextmanager
async def child(argv: list[str], env: Mapping[str, str], log_path: Path) -> AsyncIterator[Process]:
    """Runs `python argv…`; killed (by its own id) if still running at the end."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
    running_child = Process(process, log_path)
    try:
        yield running_child
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.wait(), 10)


@pytest.fixture
def ports() -> Callable[[int], list[int]]:
    return free_ports

"""Two replicas of every service behind the platform's channels, one of each
SIGKILLed under load.

The whole system runs as real processes (`protomesh up --replicas 2`'s launcher):
8 service processes on consecutive port blocks, a gateway with 2 workers. Load
arrives through the gateway (REST reads and an NDJSON change stream) and through
gRPC clients (writes with request ids, searches, task submissions, cost reads).
Mid-run one replica of each service is killed with SIGKILL. Afterwards:
- before the kill, each service's calls split between its replicas within 40/60;
- reads never fail (the channel retries NO_SIDE_EFFECTS methods on UNAVAILABLE);
- every write is acknowledged in the end (clients resend with the same request id,
  as the contract allows) and exactly the acknowledged documents and tasks exist;
- the change stream, resumed from its last sequence after a break, has delivered
  every acknowledged document once.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
import httpx
import pytest

from cli.launcher import System, start_system
from cli.status import parse_samples
from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as doc_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from protomesh.task.v1 import task_service_pb2 as task_pb
from protomesh.task.v1 import task_service_pb2_grpc as task_grpc
from services.platform.catalog import descriptor
from services.platform.channels import Dialer
from services.platform.config import EmbedderSettings, GatewaySettings, Settings
from services.platform.identity import KEY_FILE, load_key, mint_token
from tests.conftest import ALL_SCOPES, bearer, eventually

SERVICES = ("document", "search", "task", "cost")
REPLICAS = 2
READ_STREAM = httpx.Timeout(10.0, read=60.0)  # heartbeats come every 15 s
# The methods the load calls (the gateway's REST reads, the clients' gRPC calls).
LOAD_METHODS = {"CreateDocument", "GetDocument", "ListDocuments", "Search", "CreateTask"}
LOAD_METHODS |= {"ListBudgets"}
RESEND = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_layout() -> dict[str, int]:
    """Ports for 2 replicas of each service (p and p + 100), the gateway and the
    metrics block (base … base + 14), all free right now."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000, 200)
        grpc_ports = [base + i for i in range(4)] + [base + 100 + i for i in range(4)]
        metrics = [base + 150 + i for i in range(15)]
        gateway = base + 180
        if all(_bindable(p) for p in [*grpc_ports, *metrics, gateway]):
            return {
                "document_port": base,
                "search_port": base + 1,
                "task_port": base + 2,
                "cost_port": base + 3,
                "metrics_port_base": base + 150,
                "gateway": gateway,
            }
    raise RuntimeError("no free port layout")


@dataclass
class Cluster:
    settings: Settings
    system: System
    token: str

    def kill(self, child_name: str) -> None:
        child = next(c for c in self.system.children if c.name == child_name)
        assert child.process is not None
        child.process.send_signal(signal.SIGKILL)
        child.process.wait(timeout=10)

    async def calls(self, service: str) -> list[float]:
        """Calls of the test's own load each replica of `service` has answered (its
        /metrics; the indexer's calls to documents are not the test's)."""
        counts = []
        async with httpx.AsyncClient(timeout=5) as http:
            for replica in range(REPLICAS):
                port = self.settings.metrics_port_of(service, replica)
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                samples = parse_samples(text).get("protomesh_rpc_requests_total", [])
                counts.append(sum(v for labels, v in samples if labels["method"] in LOAD_METHODS))
        return counts


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    ports = free_port_layout()
    base = Settings(
        data_dir=Path(tmp_path_factory.mktemp("replicas")),
        document_port=ports["document_port"],
        search_port=ports["search_port"],
        task_port=ports["task_port"],
        cost_port=ports["cost_port"],
        metrics_port_base=ports["metrics_port_base"],
        replicas=REPLICAS,
        log_level="warning",
        # Hashing embeddings keep the indexer's CPU out of a 2-core machine's way.
        embedder=EmbedderSettings(kind="hashing"),
    )
    settings = replace(base, gateway=GatewaySettings(port=ports["gateway"], workers=2))
    system = start_system(settings, workers=0)
    try:
        token = mint_token(
            load_key(settings.data_dir / KEY_FILE),
            tenant=f"replicas-{uuid.uuid4().hex[:8]}",
            user="alice",
            scopes=ALL_SCOPES,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        yield Cluster(settings, system, token)
    finally:
        system.stop()


@dataclass
class Load:
    """What the clients saw."""

    read_failures: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    documents: set[str] = field(default_factory=set)  # acknowledged creates
    tasks: set[str] = field(default_factory=set)
    resent: int = 0
    # Per stream: the document names it delivered, in order, and how often it broke.
    streamed: dict[str, list[str]] = field(default_factory=dict)
    breaks: Counter[str] = field(default_factory=Counter)

    def caught_up(self) -> bool:
        return all(set(names) >= self.documents for names in self.streamed.values())


async def _acknowledged(call: object, request: object, metadata: object, load: Load) -> str:
    """Sends a create until it is acknowledged, resending the same request (same
    request id) after a failure that may or may not have been applied."""
    for attempt in range(40):
        try:
            reply = await call(request, metadata=metadata, timeout=10)  # type: ignore[operator]
            return str(reply.name)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in RESEND:
                raise
            load.resent += 1
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError("a create was never acknowledged")


async def _writer(cluster: Cluster, stop: asyncio.Event, load: Load) -> None:
    dialer = Dialer.from_settings(cluster.settings)
    metadata = bearer(cluster.token)
    async with (
        dialer.open(cluster.settings.address_of("document"), [descriptor("document")]) as docs,
        dialer.open(cluster.settings.address_of("task"), [descriptor("task")]) as tasks,
    ):
        documents = doc_grpc.DocumentServiceStub(docs)
        task_stub = task_grpc.TaskServiceStub(tasks)
        while not stop.is_set():
            key = uuid.uuid4().hex
            create = doc_pb.CreateDocumentRequest(
                document=doc_pb.Document(title=f"replica note {key}", content=f"note {key}"),
                request_id=key,
            )
            load.documents.add(
                await _acknowledged(documents.CreateDocument, create, metadata, load)
            )
            submit = task_pb.CreateTaskRequest(task=task_pb.Task(type="noop"), request_id=key)
            load.tasks.add(await _acknowledged(task_stub.CreateTask, submit, metadata, load))


async def _reader(cluster: Cluster, stop: asyncio.Event, load: Load) -> None:
    """REST reads through the gateway, gRPC searches and cost reads."""
    dialer = Dialer.from_settings(cluster.settings)
    metadata = bearer(cluster.token)
    headers = {"authorization": f"Bearer {cluster.token}"}
    async with (
        httpx.AsyncClient(base_url=cluster.settings.gateway_url, timeout=10) as http,
        dialer.open(cluster.settings.address_of("search"), [descriptor("search")]) as search,
        dialer.open(cluster.settings.address_of("cost"), [descriptor("cost")]) as cost,
    ):
        searches = search_grpc.SearchServiceStub(search)
        budgets = cost_grpc.CostServiceStub(cost)
        while not stop.is_set():
            known = sorted(load.documents)[-5:]
            response = await http.get("/v1/documents", params={"page_size": 5}, headers=headers)
            outcomes = [str(response.status_code)]
            for name in known[-1:]:
                outcomes.append(str((await http.get(f"/v1/{name}", headers=headers)).status_code))
            try:
                await searches.Search(
                    search_pb.SearchRequest(query="replica note", page_size=5),
                    metadata=metadata,
                    timeout=10,
                )
                outcomes.append("200")
                await budgets.ListBudgets(
                    cost_pb.ListBudgetsRequest(), metadata=metadata, timeout=10
                )
                outcomes.append("200")
            except grpc.aio.AioRpcError as exc:
                outcomes.append(exc.code().name)
            load.reads += len(outcomes)
            load.read_failures.update(o for o in outcomes if o != "200")


async def _rest_stream(cluster: Cluster, stop: asyncio.Event, load: Load, label: str) -> None:
    """The change feed over REST (NDJSON through the gateway), resumed from its
    last sequence whenever it breaks."""
    headers = {"authorization": f"Bearer {cluster.token}", "accept": "application/x-ndjson"}
    seen = load.streamed.setdefault(label, [])
    after = 0
    async with httpx.AsyncClient(
        base_url=cluster.settings.gateway_url, timeout=READ_STREAM
    ) as http:
        while not stop.is_set():
            try:
                params = {"after_sequence": after}
                async with http.stream(
                    "GET", "/v1/documents:watch", params=params, headers=headers
                ) as response:
                    assert response.status_code == 200, await response.aread()
                    async for line in response.aiter_lines():
                        message = json.loads(line)  # a change, a heartbeat or an error
                        if "error" in message:
                            raise httpx.ReadError(str(message["error"]))
                        if change := message.get("change"):
                            after = int(change["sequence"])
                            seen.append(change["documentName"])
                        if stop.is_set():
                            return
            except httpx.HTTPError:
                load.breaks[label] += 1
                await asyncio.sleep(0.1)


async def _grpc_watch(cluster: Cluster, stop: asyncio.Event, load: Load, label: str) -> None:
    """WatchChanges opened on the replica that will be killed, then resumed from its
    last sequence on the balanced target."""
    dialer = Dialer.from_settings(cluster.settings)
    seen = load.streamed.setdefault(label, [])
    after = 0
    target = cluster.settings.replica_address("document", 1)
    while not stop.is_set():
        async with dialer.open(target, [descriptor("document")]) as channel:
            call = doc_grpc.DocumentServiceStub(channel).WatchChanges(
                doc_pb.WatchChangesRequest(after_sequence=after), metadata=bearer(cluster.token)
            )
            try:
                async for message in call:
                    if message.HasField("change"):
                        after = message.change.sequence
                        seen.append(message.change.document_name)
                    if stop.is_set():
                        call.cancel()
                        return
            except grpc.aio.AioRpcError as exc:
                load.breaks[f"{label} {exc.code().name}"] += 1
                target = cluster.settings.address_of("document")


@pytest.mark.timeout(240)
async def test_a_replica_of_each_service_dies_under_load_and_nothing_is_lost(
    cluster: Cluster,
) -> None:
    load = Load()
    stop, stop_stream = asyncio.Event(), asyncio.Event()
    streams = [
        asyncio.create_task(_grpc_watch(cluster, stop_stream, load, "grpc")),
        *(
            asyncio.create_task(_rest_stream(cluster, stop_stream, load, f"rest-{i}"))
            for i in range(3)
        ),
    ]
    workers = [
        asyncio.create_task(_writer(cluster, stop, load)),
        asyncio.create_task(_writer(cluster, stop, load)),
        *(asyncio.create_task(_reader(cluster, stop, load)) for _ in range(3)),
    ]
    # Once every channel has both replicas ready (health checked), calls alternate.
    await eventually(lambda: len(load.documents) >= 10, within=90, what="10 writes")
    before = {service: await cluster.calls(service) for service in SERVICES}
    split: dict[str, list[float]] = {}

    async def measured() -> bool:
        for service in SERVICES:
            now = await cluster.calls(service)
            split[service] = [a - b for a, b in zip(now, before[service], strict=True)]
        return all(sum(served) >= 30 for served in split.values())

    await eventually(measured, within=90, every=0.5, what="30 calls to every service")

    # Balanced before the kill: every service's calls split within 40/60.
    for service, served in split.items():
        assert 0.4 <= served[0] / sum(served) <= 0.6, f"{service}: replicas served {served}"

    for service in SERVICES:
        cluster.kill(f"{service}.1")
    killed_at = len(load.documents)
    await eventually(lambda: len(load.documents) >= killed_at + 40, within=90, what="40 more")
    stop.set()
    await asyncio.wait_for(asyncio.gather(*workers), timeout=60)
    await eventually(load.caught_up, within=30, what="every stream caught up")
    stop_stream.set()
    await asyncio.wait_for(asyncio.gather(*streams), timeout=30)

    assert not load.read_failures, f"{load.read_failures} of {load.reads} reads failed"

    # Exactly the acknowledged writes exist: none lost, none doubled by a resend.
    dialer = Dialer.from_settings(cluster.settings)
    metadata = bearer(cluster.token)
    async with dialer.open(cluster.settings.address_of("document"), [descriptor("document")]) as c:
        stored: list[str] = []
        page = ""
        while True:
            reply = await doc_grpc.DocumentServiceStub(c).ListDocuments(
                doc_pb.ListDocumentsRequest(page_size=1000, page_token=page), metadata=metadata
            )
            stored += [d.name for d in reply.documents]
            page = reply.next_page_token
            if not page:
                break
    assert sorted(stored) == sorted(load.documents)
    async with dialer.open(cluster.settings.address_of("task"), [descriptor("task")]) as c:
        listed = await task_grpc.TaskServiceStub(c).ListTasks(
            task_pb.ListTasksRequest(page_size=1000), metadata=metadata
        )
    assert sorted(t.name for t in listed.tasks) == sorted(load.tasks)

    # Every stream, resumed after its breaks, delivered every acknowledged document
    # once; the gRPC watch on the killed replica did break and resume.
    for label, names in load.streamed.items():
        assert Counter(names) == Counter(load.documents), label
    assert load.breaks["grpc UNAVAILABLE"] >= 1
    assert {label for label in load.breaks if label.startswith("grpc")} == {"grpc UNAVAILABLE"}
    print(  # the run's shape, for whoever reads the log (pytest -s)
        f"documents {len(load.documents)}, tasks {len(load.tasks)}, reads {load.reads}, "
        f"resent {load.resent}, stream breaks {dict(load.breaks)}, split {split}"
    )

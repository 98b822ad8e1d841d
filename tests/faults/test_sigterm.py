"""SIGTERM to a service process under load (`python -m services.document`, as
`protomesh up` runs it): health turns NOT_SERVING while the listener still
accepts, every call the server accepted completes OK (0 dropped, checked
against the server's own access log and the database), calls after the
listener closed get UNAVAILABLE at once (never a hang, never INTERNAL), an open
watch ends with a status a client resumes from, and the process exits 0 within
its grace period. With a second instance, a client that knows both addresses
(round_robin + retry on UNAVAILABLE) never sees a failure."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cli.launcher import free_ports, grpc_serving
from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.platform.channels import Dialer
from tests.conftest import Mint, bearer
from tests.faults.conftest import Process, System, child, eventually

GRACE_SECONDS = 5.0  # room for a loaded CI machine; the notice is a quarter of it
LOADERS = 8


@asynccontextmanager
async def document_service(
    system: System, port: int, log_path: Path
) -> AsyncIterator[tuple[Process, str]]:
    """`python -m services.document` on `port`, serving; yields it and its address."""
    env = system.environ(
        PROTOMESH_DOCUMENT_PORT=str(port),
        PROTOMESH_GRACE_PERIOD_SECONDS=str(GRACE_SECONDS),
        PROTOMESH_LOG_LEVEL="info",  # the access log is the server's account of each call
        PROTOMESH_LOG_FORMAT="json",
    )
    address = f"127.0.0.1:{port}"
    async with child(["-m", "services.document"], env, log_path) as process:
        await eventually(lambda: grpc_serving(address), within=30, every=0.1, what=f"{address} up")
        yield process, address


def access_log(process: Process, method: str) -> list[str]:
    """Status codes of `method` in the process's access log, in order."""
    codes = []
    for line in process.log().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") == "rpc" and entry.get("rpc", "").endswith("/" + method):
            codes.append(entry["code"])
    return codes


@dataclass
class Outcome:
    document_id: str
    code: str
    sent_at: float
    seconds: float


@dataclass
class Load:
    """Concurrent CreateDocument calls in a loop, each with its own document id."""

    stub: pb_grpc.DocumentServiceStub
    metadata: tuple[tuple[str, str], ...]
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while not self.stop.is_set():
            document_id = "d" + uuid.uuid4().hex[:16]
            request = pb.CreateDocumentRequest(
                document_id=document_id,
                request_id=document_id,
                document=pb.Document(title="load", content="Load under shutdown. " * 20),
            )
            sent = time.monotonic()
            try:
                await self.stub.CreateDocument(request, metadata=self.metadata, timeout=10)
                code = "OK"
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
            self.outcomes.append(Outcome(document_id, code, sent, time.monotonic() - sent))
            if code != "OK":
                await asyncio.sleep(0.02)

    def codes(self) -> list[str]:
        return [o.code for o in self.outcomes]


def status_name(status: int) -> str:
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))


async def watch_health(channel: grpc.aio.Channel, seen: list[tuple[float, str]]) -> None:
    """Health.Watch, as gRPC client-side health checking uses it."""
    try:
        async for reply in health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest()
        ):
            seen.append((time.monotonic(), status_name(reply.status)))
    except grpc.aio.AioRpcError:
        return


async def probe_health(address: str, seen: list[tuple[float, str]], stop: asyncio.Event) -> None:
    """Health.Check on a new connection each time, as a load balancer's prober does."""
    while not stop.is_set():
        async with grpc.aio.insecure_channel(address) as channel:
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
                seen.append((time.monotonic(), status_name(reply.status)))
            except grpc.aio.AioRpcError as exc:
                seen.append((time.monotonic(), exc.code().name))
        await asyncio.sleep(0.01)


def first(seen: list[tuple[float, str]], status: str) -> float:
    return next((t for t, s in seen if s == status), float("inf"))


@dataclass
class Shutdown:
    """What one SIGTERM under load looked like, from both sides."""

    tenant: str
    watched: list[tuple[float, str]]  # Health.Watch
    probed: list[tuple[float, str]]  # Health.Check on new connections
    batch_replies: list[object]
    load: Load
    after_exit: int  # outcomes[after_exit:] were sent after the process was gone
    watch_end: str
    exit_code: int
    exit_seconds: float
    server_codes: list[str]
    stored: set[str]

    @property
    def refused(self) -> list[Outcome]:
        return [o for o in self.load.outcomes if o.code != "OK"]


@pytest.fixture(scope="module")
async def shutdown(
    system: System,
    owner: asyncpg.Connection,
    mint: Mint,
    tmp_path_factory: pytest.TempPathFactory,
) -> Shutdown:
    """SIGTERM to a document service under a load of unary calls, with client
    streams it accepted still open, a watch and a health watch open."""
    tenant = f"term-{uuid.uuid4().hex[:8]}"
    metadata = bearer(mint(tenant))
    (port,) = free_ports(1)
    log_path = tmp_path_factory.mktemp("sigterm") / "document.log"
    async with document_service(system, port, log_path) as (process, address):
        channel = grpc.aio.insecure_channel(address)
        stub = pb_grpc.DocumentServiceStub(channel)
        watched: list[tuple[float, str]] = []
        health_watch = asyncio.create_task(watch_health(channel, watched))
        changes = stub.WatchChanges(pb.WatchChangesRequest(), metadata=metadata)
        gates = [asyncio.Event() for _ in range(3)]
        batches = [
            asyncio.ensure_future(stub.BatchCreateDocuments(held(gate, n), metadata=metadata))
            for n, gate in enumerate(gates)
        ]
        load = Load(stub, metadata)
        loaders = [asyncio.create_task(load.run()) for _ in range(LOADERS)]
        await eventually(lambda: load.codes().count("OK") >= 40, what="load under way")
        assert (await changes.read()).HasField("change")
        probed: list[tuple[float, str]] = []
        stop_probing = asyncio.Event()
        prober = asyncio.create_task(probe_health(address, probed, stop_probing))

        signalled = time.monotonic()
        process.signal(signal.SIGTERM)
        await eventually(lambda: first(probed, "UNAVAILABLE") < float("inf"), what="refusal")
        for gate in gates:
            gate.set()  # the listener is closed now; what it accepted still completes
        batch_replies = await asyncio.gather(*batches, return_exceptions=True)
        watch_end = await stream_end(changes)
        exit_code = await process.wait(within=GRACE_SECONDS + 10)
        exit_seconds = time.monotonic() - signalled
        after_exit = len(load.outcomes)
        await asyncio.sleep(0.2)  # calls to the dead address
        load.stop.set()
        stop_probing.set()
        await asyncio.gather(*loaders, prober)
        health_watch.cancel()
        await channel.close()
    rows = await owner.fetch("SELECT id FROM document.documents WHERE tenant_id = $1", tenant)
    return Shutdown(
        tenant,
        watched,
        probed,
        batch_replies,
        load,
        after_exit,
        watch_end,
        exit_code,
        exit_seconds,
        access_log(process, "CreateDocument"),
        {r["id"] for r in rows},
    )


def test_health_turns_not_serving_while_the_listener_still_accepts(shutdown: Shutdown) -> None:
    assert [s for _, s in shutdown.watched][:2] == ["SERVING", "NOT_SERVING"]
    refused_at = first(shutdown.probed, "UNAVAILABLE")
    assert first(shutdown.watched, "NOT_SERVING") < refused_at
    # A prober connecting anew is still answered, NOT_SERVING, before being refused.
    assert first(shutdown.probed, "NOT_SERVING") < refused_at, shutdown.probed


def test_every_call_the_server_accepted_completes_ok(shutdown: Shutdown) -> None:
    # Client streams accepted before the signal, finished after the listener closed.
    assert [getattr(r, "created_count", r) for r in shutdown.batch_replies] == [3, 3, 3]
    # Every unary call the server took (its access log) ended OK, and the client saw
    # OK for exactly as many; what it stored is what was answered OK, nothing more.
    assert set(shutdown.server_codes) == {"OK"}
    ok = [o for o in shutdown.load.outcomes if o.code == "OK"]
    assert len(ok) == len(shutdown.server_codes)
    assert {o.document_id for o in ok} <= shutdown.stored
    assert not {o.document_id for o in shutdown.refused} & shutdown.stored


def test_calls_after_shutdown_started_are_refused_at_once_never_internal(
    shutdown: Shutdown,
) -> None:
    refused = shutdown.refused
    assert refused, "no call was refused: the load did not outlast the listener"
    assert {o.code for o in refused} <= {"UNAVAILABLE", "CANCELLED"}  # see the xfail below
    assert all(o.seconds < GRACE_SECONDS for o in refused), "a refused call hung"
    assert {o.code for o in shutdown.load.outcomes[shutdown.after_exit :]} == {"UNAVAILABLE"}


def test_an_open_watch_ends_resumable_and_the_process_exits_0_within_the_grace_period(
    shutdown: Shutdown,
) -> None:
    assert shutdown.watch_end == "UNAVAILABLE"
    assert shutdown.exit_code == 0
    assert shutdown.exit_seconds <= GRACE_SECONDS, f"exit took {shutdown.exit_seconds:.2f}s"


def test_calls_racing_the_listener_close_get_unavailable_not_cancelled(
    shutdown: Shutdown,
) -> None:
    cancelled = [o for o in shutdown.refused if o.code == "CANCELLED"]
    if cancelled:
        pytest.xfail(
            f"{len(cancelled)} call(s) sent as the listener closed got CANCELLED, not "
            "UNAVAILABLE: gRPC core cancels the calls it has received but no handler has "
            "taken yet when the server shuts down (grpc/grpc#41785). The server never ran "
            "them (no access-log line, nothing stored), but clients do not retry "
            "CANCELLED; a client with a peer and health checking never sends them (below)"
        )
    assert {o.code for o in shutdown.refused} == {"UNAVAILABLE"}


@pytest.mark.timeout(60)
async def test_a_client_of_two_instances_never_fails_while_one_shuts_down(
    system: System, mint: Mint, tmp_path: Path
) -> None:
    metadata = bearer(mint(f"peer-{uuid.uuid4().hex[:8]}"))
    document = await system.documents.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(content="Served by either.")),
        metadata=metadata,
    )
    port_a, port_b = free_ports(2)
    async with (
        document_service(system, port_a, tmp_path / "a.log") as (a, _),
        document_service(system, port_b, tmp_path / "b.log") as (b, _),
    ):
        # The platform's channel: round_robin over both, client-side health checking,
        # and the contract's retry policy (retryable methods, on UNAVAILABLE).
        target = f"ipv4:127.0.0.1:{port_a},127.0.0.1:{port_b}"
        descriptor = pb.DESCRIPTOR.services_by_name["DocumentService"]
        async with Dialer.from_settings(system.settings).open(target, [descriptor]) as channel:
            stub = pb_grpc.DocumentServiceStub(channel)
            outcomes: list[str] = []
            stop = asyncio.Event()

            async def reads() -> None:
                request = pb.GetDocumentRequest(name=document.name)
                while not stop.is_set():
                    try:
                        await stub.GetDocument(request, metadata=metadata, timeout=10)
                        outcomes.append("OK")
                    except grpc.aio.AioRpcError as exc:
                        outcomes.append(exc.code().name)

            readers = [asyncio.create_task(reads()) for _ in range(LOADERS)]
            await eventually(
                lambda: access_log(a, "GetDocument") and access_log(b, "GetDocument"),
                what="both instances serving",
            )
            a.signal(signal.SIGTERM)
            assert await a.wait(within=GRACE_SECONDS + 10) == 0
            served_by_b = len(access_log(b, "GetDocument"))
            await eventually(lambda: len(access_log(b, "GetDocument")) > served_by_b + 50)
            stop.set()
            await asyncio.gather(*readers)
    assert set(outcomes) == {"OK"}, {c: outcomes.count(c) for c in set(outcomes)}
    assert set(access_log(a, "GetDocument")) == {"OK"}


async def held(gate: asyncio.Event, n: int) -> AsyncIterator[pb.BatchCreateDocumentsRequest]:
    """Three documents; the last two only once `gate` is set."""
    for i in range(3):
        if i == 1:
            await gate.wait()
        yield pb.BatchCreateDocumentsRequest(
            document_id=f"batch-{n}-{i}", document=pb.Document(content=f"Batch {n}, {i}.")
        )


async def stream_end(call: grpc.aio.UnaryStreamCall) -> str:
    """How a server stream ended: EOF or its status code."""
    try:
        while await call.read() is not grpc.aio.EOF:
            pass
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    return "EOF"

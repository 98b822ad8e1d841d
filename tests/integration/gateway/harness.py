"""Test harness for the gateway: compiles the test-only protos (tests/protos) at
test time, a ThingService servicer on a real grpc.aio server, and the gateway
app for it (over ASGITransport, or a real uvicorn server)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
import sys
import sysconfig
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import grpc_tools
import httpx
import uvicorn
from google.protobuf import any_pb2, duration_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.config import GatewayConfig

REPO = Path(__file__).resolve().parents[3]
PROTO = "gatewaytest/v1/gatewaytest.proto"
SERVICE = "gatewaytest.v1.ThingService"


@dataclass
class Compiled:
    out_dir: Path
    descriptor_set: Path
    pb2: ModuleType
    pb2_grpc: ModuleType


_compiled: Compiled | None = None


def compile_test_protos(out_dir: Path) -> Compiled:
    """protoc the test protos once per session into `out_dir` (added to sys.path)."""
    global _compiled
    if _compiled is not None:
        return _compiled
    from grpc_tools import protoc

    site = Path(sysconfig.get_paths()["purelib"])
    descriptor_set = out_dir / "gatewaytest.binpb"
    args = [
        "protoc",
        f"-I{REPO / 'tests' / 'protos'}",
        f"-I{REPO / 'proto'}",
        f"-I{site}",
        f"-I{Path(grpc_tools.__file__).parent / '_proto'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--descriptor_set_out={descriptor_set}",
        "--include_source_info",
        "--include_imports",
        PROTO,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    sys.path.insert(0, str(out_dir))
    pb2 = importlib.import_module("gatewaytest.v1.gatewaytest_pb2")
    pb2_grpc = importlib.import_module("gatewaytest.v1.gatewaytest_pb2_grpc")
    _compiled = Compiled(out_dir, descriptor_set, pb2, pb2_grpc)
    return _compiled


@dataclass
class Observed:
    """What the servicer saw: cancelled calls by method name."""

    cancelled: dict[str, asyncio.Event] = field(default_factory=dict)

    def event(self, name: str) -> asyncio.Event:
        return self.cancelled.setdefault(name, asyncio.Event())


CREATED = timestamp_pb2.Timestamp(seconds=1_700_000_000)


def make_servicer(pb: ModuleType, base: type, observed: Observed) -> Any:
    class ThingServicer(base):  # type: ignore[misc,valid-type]
        async def GetThing(self, request: Any, context: Any) -> Any:
            if request.name.endswith("/missing"):
                await context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
            return pb.Thing(
                name=request.name,
                title="T",
                kind=pb.KIND_SMALL,
                weight=2**40,
                create_time=CREATED,
                etag="v1",
            )

        async def ListThings(self, request: Any, context: Any) -> Any:
            things = [pb.Thing(name="things/a", title="A"), pb.Thing(name="things/b", title="B")]
            return pb.ListThingsResponse(things=things, next_page_token="next", echo=request)

        async def CreateThing(self, request: Any, context: Any) -> Any:
            thing = pb.Thing()
            thing.CopyFrom(request.thing)
            thing.name = f"things/{request.thing_id or 'new'}"
            thing.create_time.CopyFrom(CREATED)
            thing.etag = "v1"
            if request.request_id:
                thing.labels["request_id"] = request.request_id
            return thing

        async def UpdateThing(self, request: Any, context: Any) -> Any:
            thing = pb.Thing()
            thing.CopyFrom(request.thing)
            thing.labels["mask"] = ",".join(request.update_mask.paths)
            return thing

        async def DeleteThing(self, request: Any, context: Any) -> Any:
            if request.etag == "busy":
                await context.abort(grpc.StatusCode.ABORTED, "concurrent change, retry")
            if request.etag and request.etag != "v1":
                status = status_pb2.Status(code=code_pb2.ABORTED, message="etag mismatch")
                packed = any_pb2.Any()
                packed.Pack(error_details_pb2.ErrorInfo(reason="ETAG_MISMATCH", domain="test"))
                status.details.append(packed)
                await context.abort_with_status(rpc_status.to_status(status))
            return pb.DeleteThingResponse(name=request.name, etag=request.etag)

        async def ArchiveThing(self, request: Any, context: Any) -> Any:
            return pb.Thing(name=request.name, title=request.reason)

        async def ListThingNames(self, request: Any, context: Any) -> Any:
            return pb.ListThingNamesResponse(names=["things/a", "things/b"], total=2)

        async def Echo(self, request: Any, context: Any) -> Any:
            metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            metadata.update(
                {k: v.hex() for k, v in context.invocation_metadata() if isinstance(v, bytes)}
            )
            remaining = context.time_remaining()
            return pb.EchoResponse(
                request=request, metadata=metadata, deadline_seconds=remaining or 0.0
            )

        async def Fail(self, request: Any, context: Any) -> Any:
            if request.code == 0:
                return pb.FailResponse()
            status = status_pb2.Status(code=request.code, message=request.message)
            if request.with_details:
                for detail in (
                    error_details_pb2.BadRequest(
                        field_violations=[
                            error_details_pb2.BadRequest.FieldViolation(
                                field="title", description="too long"
                            )
                        ]
                    ),
                    error_details_pb2.ErrorInfo(reason="TEST", domain="gatewaytest"),
                ):
                    packed = any_pb2.Any()
                    packed.Pack(detail)
                    status.details.append(packed)
            if request.retry_seconds:
                packed = any_pb2.Any()
                delay = duration_pb2.Duration()
                delay.FromNanoseconds(int(request.retry_seconds * 1e9))
                packed.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
                status.details.append(packed)
            await context.abort_with_status(rpc_status.to_status(status))
            return pb.FailResponse()

        async def Sleep(self, request: Any, context: Any) -> Any:
            try:
                await asyncio.sleep(request.duration.ToTimedelta().total_seconds())
            except asyncio.CancelledError:
                observed.event("Sleep").set()
                raise
            return pb.SleepResponse(deadline_seconds=context.time_remaining() or 0.0)

        async def GetFile(self, request: Any, context: Any) -> Any:
            from google.api import httpbody_pb2

            if request.path == "missing":
                await context.abort(grpc.StatusCode.NOT_FOUND, "no such file")
            return httpbody_pb2.HttpBody(
                content_type="text/plain", data=f"file:{request.path}".encode()
            )

        async def WatchThings(self, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                if request.fail_code and request.count < 0:
                    await context.abort(grpc.StatusCode(_code(request.fail_code)), "at once")
                for seq in range(request.after_seq + 1, request.after_seq + 1 + request.count):
                    if seq % 3 == 0:
                        yield pb.WatchThingsResponse(heartbeat=True)
                    yield pb.WatchThingsResponse(event=pb.Event(seq=seq, name=f"e{seq}"))
                    if request.pause_ms:
                        await asyncio.sleep(request.pause_ms / 1000)
                if request.fail_code:
                    await context.abort(grpc.StatusCode(_code(request.fail_code)), "stream broke")
                if request.hold:
                    await asyncio.Event().wait()
            except asyncio.CancelledError:
                observed.event("WatchThings").set()
                raise

        async def ExportThings(self, request: Any, context: Any) -> AsyncIterator[Any]:
            from google.api import httpbody_pb2

            if request.rows < 0:
                await context.abort(grpc.StatusCode.NOT_FOUND, "nothing to export")
            yield httpbody_pb2.HttpBody(content_type="text/csv", data=b"id,name\n")
            for i in range(request.rows):
                yield httpbody_pb2.HttpBody(data=f"{i},thing{i}\n".encode())
            if request.fail_code:
                await context.abort(grpc.StatusCode(_code(request.fail_code)), "export broke")

        async def UploadThings(self, request_iterator: Any, context: Any) -> Any:
            response = pb.UploadThingsResponse()
            try:
                async for item in request_iterator:
                    response.count += 1
                    response.titles.append(item.thing.title)
                    response.batch = item.batch
                # A cancelled client stream ends the request iterator like a
                # half-close; the cancellation reaches the handler at its next await.
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                observed.event("UploadThings").set()
                raise
            return response

        async def Chat(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for message in request_iterator:
                    yield pb.ChatMessage(text=f"echo:{message.text}")
            except asyncio.CancelledError:
                observed.event("Chat").set()
                raise

    return ThingServicer()


def _code(number: int) -> tuple[int, str]:
    name = code_pb2.Code.Name(number)
    return grpc.StatusCode[name].value


@dataclass
class Backend:
    server: grpc.aio.Server
    port: int
    observed: Observed
    health: health.aio.HealthServicer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


async def start_backend(compiled: Compiled) -> Backend:
    observed = Observed()
    server = grpc.aio.server()
    servicer = make_servicer(compiled.pb2, compiled.pb2_grpc.ThingServiceServicer, observed)
    compiled.pb2_grpc.add_ThingServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return Backend(server, port, observed, health_servicer)


def gateway_config(compiled: Compiled, **overrides: Any) -> GatewayConfig:
    values: dict[str, Any] = {
        "descriptor_set": str(compiled.descriptor_set),
        "heartbeat_seconds": 0.2,
        "first_message_seconds": 0.1,
        "max_body_bytes": 64 * 1024,
        "max_line_bytes": 1024,
        "cors_origins": ("https://app.example",),
        "gzip_min_bytes": 512,
    }
    values.update(overrides)
    return GatewayConfig(**values)


def make_app(compiled: Compiled, backend: Backend, **overrides: Any) -> Starlette:
    return create_app(gateway_config(compiled, **overrides), {SERVICE: backend.address})


def asgi_client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


@contextlib.asynccontextmanager
async def live_server(app: Starlette, **options: Any) -> AsyncIterator[str]:
    """Serves `app` with uvicorn in this event loop on an ephemeral port; `options`
    go to uvicorn (HTTPS with `ssl_certfile`/`ssl_keyfile`, proxy headers)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # A request still open at the end (a client that left a stream hanging) is cut
    # after a short grace instead of holding the teardown.
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", timeout_graceful_shutdown=3, **options
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)
        yield f"{'https' if options.get('ssl_certfile') else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except TimeoutError:
            # Seen at the end of full runs: the server task no longer makes progress
            # (its loop tick never comes back), so it is cancelled rather than awaited.
            task.cancel()
            await asyncio.wait({task}, timeout=5)
        sock.close()

"""The floors under bench/gateway.py: the smallest starlette app, served the way the
gateway is (uvicorn with uvloop + httptools, one worker), answering GET
/v1/things/{name} with a fixed small JSON body.

- Without `--backend`: the HTTP floor — what a REST call costs with this client and
  server stack before any transcoding or gRPC.
- With `--backend ADDRESS --method /pkg.Service/Method --request HEX`: the hop floor —
  the same app awaits one unary call (the given serialized request, the reply's bytes
  thrown away) on a `grpc.aio` channel opened once, before answering. What any
  Python gateway that forwards over gRPC costs on this stack with zero transcoding.

    .venv/bin/python -m bench.http_floor 8123
    .venv/bin/python -m bench.http_floor 8123 --backend 127.0.0.1:50051 \
        --method /gatewaytest.v1.ThingService/GetThing --request 0a0c...
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import grpc
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"name":"things/bench","displayName":"bench"}'


def floor_app() -> Starlette:
    async def thing(request: Request) -> Response:
        return Response(BODY, media_type="application/json")

    return Starlette(routes=[Route("/v1/things/{name}", thing)])


def hop_floor_app(backend: str, method: str, request: bytes) -> Starlette:
    calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = []

    async def thing(request_: Request) -> Response:
        await calls[0](request, timeout=5)
        return Response(BODY, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The channel belongs to the serving event loop, as the gateway's do.
        async with grpc.aio.insecure_channel(backend) as channel:
            calls.append(channel.unary_unary(method))  # bytes in, bytes out
            yield

    return Starlette(routes=[Route("/v1/things/{name}", thing)], lifespan=lifespan)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--backend", default="")
    parser.add_argument("--method", default="")
    parser.add_argument("--request", default="", help="the serialized request, hex")
    args = parser.parse_args()
    app = (
        hop_floor_app(args.backend, args.method, bytes.fromhex(args.request))
        if args.backend
        else floor_app()
    )
    # uvicorn picks uvloop and httptools when installed, as it does for the gateway.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")

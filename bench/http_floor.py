"""The HTTP floor for bench/gateway.py: the smallest starlette app, served the way the
gateway is (uvicorn with uvloop + httptools, one worker), answering GET
/v1/things/{name} with a fixed small JSON body. What a REST call costs with this
client and server stack before any transcoding or gRPC.

    .venv/bin/python -m bench.http_floor 8123
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"name":"things/bench","displayName":"bench"}'


async def thing(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/v1/things/{name}", thing)])

if __name__ == "__main__":
    # uvicorn picks uvloop and httptools when installed, as it does for the gateway.
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

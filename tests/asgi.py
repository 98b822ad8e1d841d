"""An ASGI app served by uvicorn on a free 127.0.0.1 port, for tests that need a
real HTTP peer (the fake model providers)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


@asynccontextmanager
async def serving(app: Any, force_exit: bool = False) -> AsyncIterator[str]:
    """Serves `app` until the block ends; yields its origin (`http://127.0.0.1:<port>`).
    `force_exit` stops without waiting for open connections (a stalled stream)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    running = asyncio.ensure_future(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        server.force_exit = force_exit
        await running
        sock.close()

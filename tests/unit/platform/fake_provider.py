"""A scripted OpenAI-compatible provider on 127.0.0.1 (starlette + uvicorn, real
HTTP), speaking the subset the model clients use: `POST /v1/chat/completions`
streamed as server-sent events, and `POST /v1/embeddings`.

Each request takes the next `Reply` from `script` (none left: a normal answer):
an error status with headers (`Retry-After`…), a delay before answering (beyond
the client's timeout), or a stall after the first streamed chunk. Every request
is recorded with its arrival time, so tests see exactly what reached the
provider and when."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.search.embedders import HashingEmbedder
from tests.asgi import serving


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0  # before the status line
    stall_seconds: float = 0.0  # after the first streamed chunk


@dataclass(frozen=True)
class Received:
    path: str
    at: float  # time.monotonic()
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeProvider:
    url: str = ""
    answer: str = "Otters hold hands [1]."
    chunk_size: int = 6
    send_usage: bool = True
    usage: tuple[int, int] = (120, 30)
    dimensions: int = 384
    script: list[Reply] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path.endswith(path)]

    async def _reply(self, request: Request) -> tuple[dict[str, Any], Reply, Response | None]:
        body = await request.json()
        self.received.append(
            Received(request.url.path, time.monotonic(), dict(request.headers), body)
        )
        reply = self.script.pop(0) if self.script else Reply()
        if reply.delay_seconds:
            await asyncio.sleep(reply.delay_seconds)
        if reply.status != 200:
            error = {"error": {"message": f"scripted {reply.status}", "type": "scripted"}}
            return body, reply, JSONResponse(error, reply.status, headers=reply.headers)
        return body, reply, None

    async def chat(self, request: Request) -> Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            body, reply, refused = await self._reply(request)
        finally:
            self.in_flight -= 1
        if refused is not None:
            return refused

        async def events() -> AsyncIterator[bytes]:
            text = self.answer
            for i, start in enumerate(range(0, len(text), self.chunk_size)):
                piece = text[start : start + self.chunk_size]
                chunk = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                if i == 0 and reply.stall_seconds:
                    await asyncio.sleep(reply.stall_seconds)
            if self.send_usage:
                prompt, completion = self.usage
                usage = {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                }
                final = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": body["model"],
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(final)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def embeddings(self, request: Request) -> Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            body, _, refused = await self._reply(request)
        finally:
            self.in_flight -= 1
        if refused is not None:
            return refused
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = await HashingEmbedder(self.dimensions).embed(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": [2.0 * x for x in v]}
            for i, v in reversed(list(enumerate(vectors)))  # out of order, as allowed
        ]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        return JSONResponse(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            ]
        )


@asynccontextmanager
async def fake_provider(**options: Any) -> AsyncIterator[FakeProvider]:
    """A running provider; its `url` is the base URL (`http://127.0.0.1:<port>/v1`)."""
    provider = FakeProvider(**options)
    async with serving(provider.app(), force_exit=True) as origin:
        provider.url = f"{origin}/v1"
        yield provider

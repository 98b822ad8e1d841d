"""A local OpenAI-compatible chat-completions server (starlette + uvicorn on
127.0.0.1, real HTTP): streams the scripted answer as SSE chunks, then a final
usage chunk (unless told not to); can fail the first requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.asgi import serving


@dataclass
class Script:
    answer: str = "Hello."
    chunk_size: int = 8
    send_usage: bool = True
    usage: tuple[int, int] = (120, 30)
    fail_first: int = 0
    fail_status: int = 503
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


def app_for(script: Script) -> Starlette:
    async def completions(request: Request) -> Response:
        body = await request.json()
        script.requests.append(body)
        script.authorizations.append(request.headers.get("authorization", ""))
        if len(script.requests) <= script.fail_first:
            return JSONResponse({"error": {"message": "busy"}}, status_code=script.fail_status)

        async def events() -> AsyncIterator[bytes]:
            text = script.answer
            for start in range(0, len(text), script.chunk_size):
                chunk = {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "delta": {"content": text[start : start + script.chunk_size]}}
                    ],
                }
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                await asyncio.sleep(0)
            if script.send_usage:
                final = {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": {
                        "prompt_tokens": script.usage[0],
                        "completion_tokens": script.usage[1],
                        "total_tokens": sum(script.usage),
                    },
                }
                yield f"data: {json.dumps(final)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@asynccontextmanager
async def fake_openai(script: Script) -> AsyncIterator[str]:
    """Serves `script`; yields the base URL (`http://127.0.0.1:<port>/v1`)."""
    async with serving(app_for(script)) as origin:
        yield f"{origin}/v1"

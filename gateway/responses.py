"""Sending complete HTTP responses over raw ASGI `send`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.types import Send

from gateway.errors import GatewayError
from gateway.jsonmap import dumps

JSON = "application/json"

HeaderList = list[tuple[bytes, bytes]]


def header_list(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> HeaderList:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items]


async def send_start(send: Send, status: int, content_type: str, headers: HeaderList) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode("latin-1")), *headers],
        }
    )


async def send_body(send: Send, body: bytes, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def send_complete(
    send: Send, status: int, content_type: str, body: bytes, headers: HeaderList
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send_start(send, status, content_type, headers)
    await send_body(send, body)


async def send_error(send: Send, error: GatewayError, headers: HeaderList) -> None:
    await send_complete(
        send,
        error.http_status,
        JSON,
        dumps(error.body()),
        [*headers, *header_list(error.response_headers())],
    )

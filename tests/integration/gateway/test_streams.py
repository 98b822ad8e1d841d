"""Streaming through the gateway: SSE and NDJSON server streams, cursors and
Last-Event-ID resume, heartbeats, mid-stream errors, raw HttpBody streams, NDJSON
client streams and bidi, and client disconnects cancelling the upstream call."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.integration.gateway.harness import Backend

SSE = {"Accept": "text/event-stream"}


def sse_events(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip() or block.startswith(":"):
            continue
        event: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            event[key] = value
        events.append(event)
    return events


async def test_sse_stream_has_ids_from_cursor_field(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things:watch?count=3", headers=SSE)
    assert response.headers["content-type"] == "text/event-stream"
    events = sse_events(response.text)
    assert [e.get("id") for e in events] == ["1", "2", None, "3"]
    assert json.loads(events[0]["data"]) == {
        "event": {"seq": "1", "name": "e1"},
        "heartbeat": False,
    }


async def test_last_event_id_resumes_after_cursor(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/things:watch?count=2&afterSeq=1", headers={**SSE, "Last-Event-ID": "41"}
    )
    assert [e.get("id") for e in sse_events(response.text)] == [None, "42", "43"]


async def test_bad_last_event_id_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things:watch?count=1", headers={**SSE, "Last-Event-ID": "x"})
    assert response.status_code == 400


async def test_ndjson_is_default_stream_format(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things:watch?count=2")
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["event"]["seq"] for line in lines] == ["1", "2"]


async def test_error_before_first_message_gets_real_status(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things:watch?count=-1&failCode=5", headers=SSE)
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


async def test_mid_stream_error_is_final_sse_error_event(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things:watch?count=2&failCode=14", headers=SSE)
    events = sse_events(response.text)
    assert events[-1]["event"] == "error"
    error = json.loads(events[-1]["data"])["error"]
    assert (error["code"], error["status"], error["message"]) == (
        503,
        "UNAVAILABLE",
        "stream broke",
    )


async def test_mid_stream_error_is_final_ndjson_line(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things:watch?count=1&failCode=10")
    last = json.loads(response.text.splitlines()[-1])
    assert last["error"]["status"] == "ABORTED"


async def test_server_streamed_http_body_is_raw_csv(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things:export?rows=2")
    assert response.headers["content-type"] == "text/csv"
    assert response.text == "id,name\n0,thing0\n1,thing1\n"


async def test_http_body_stream_failing_at_once_gets_status(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/things:export?rows=-1")
    assert response.status_code == 404


async def test_ndjson_client_stream_is_sent_upstream(client: httpx.AsyncClient) -> None:
    body = b'{"thing": {"title": "a"}}\n\n{"thing": {"title": "b"}, "batch": "z"}'
    response = await client.post(
        "/v1/things:upload", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert response.json() == {"count": 2, "titles": ["a", "b"], "batch": "z"}


async def test_bad_ndjson_line_is_400_naming_the_line(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    body = b'{"thing": {"title": "a"}}\n{"nope": 1}\n'
    response = await client.post("/v1/things:upload", content=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("line 2:")


async def test_ndjson_line_over_limit_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"thing": {"title": "' + b"x" * 2000 + b'"}}\n'
    response = await client.post("/v1/things:upload", content=body)
    assert response.status_code == 413


async def test_client_stream_with_wrong_media_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/things:upload", content=b"x", headers={"content-type": "text/csv"}
    )
    assert response.status_code == 415


async def test_bidi_stream_answers_each_line(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat", content=b'{"text": "a"}\n{"text": "b"}\n')
    assert [json.loads(x)["text"] for x in response.text.splitlines()] == ["echo:a", "echo:b"]


async def test_bidi_bad_line_ends_with_error_line(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat",
        content=b'{"text": "a"}\n{"bad": 1}\n',
        headers={"accept": "application/x-ndjson"},
    )
    last = response.text.splitlines()[-1]
    assert json.loads(last)["error"]["code"] == 400


async def test_sse_heartbeats_while_idle(live_url: str) -> None:
    async with (
        httpx.AsyncClient(base_url=live_url, timeout=5) as live,
        live.stream("GET", "/v1/things:watch?count=1&hold=true", headers=SSE) as response,
    ):
        seen = b""
        async for chunk in response.aiter_bytes():
            seen += chunk
            if b": heartbeat" in seen:
                break
    assert b"id: 1\n" in seen


async def test_client_disconnect_cancels_server_stream(live_url: str, backend: Backend) -> None:
    cancelled = backend.observed.event("WatchThings")
    cancelled.clear()
    async with (
        httpx.AsyncClient(base_url=live_url, timeout=5) as live,
        live.stream("GET", "/v1/things:watch?count=1&hold=true", headers=SSE) as response,
    ):
        async for chunk in response.aiter_bytes():
            if b"id: 1" in chunk:
                break
    await asyncio.wait_for(cancelled.wait(), 2)


async def _raw_request(live_url: str, head: bytes, body: bytes) -> None:
    url = urlsplit(live_url)
    _reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(head + body)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await writer.wait_closed()


async def test_client_disconnect_cancels_unary_call(live_url: str, backend: Backend) -> None:
    cancelled = backend.observed.event("Sleep")
    cancelled.clear()
    head = b"GET /v1/sleep?duration=1.8s HTTP/1.1\r\nHost: x\r\n\r\n"
    await _raw_request(live_url, head, b"")
    await asyncio.wait_for(cancelled.wait(), 1)


async def test_client_disconnect_mid_body_cancels_client_stream(
    live_url: str, backend: Backend
) -> None:
    cancelled = backend.observed.event("UploadThings")
    cancelled.clear()
    head = (
        b"POST /v1/things:upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    line = b'{"thing": {"title": "a"}}\n'
    chunk = f"{len(line):x}\r\n".encode() + line + b"\r\n"
    await _raw_request(live_url, head, chunk)
    await asyncio.wait_for(cancelled.wait(), 2)


async def test_stream_events_print_defaults_exactly_as_unary_replies_do(
    compiled: object, backend: Backend
) -> None:
    from google.protobuf import json_format

    from tests.integration.gateway.harness import asgi_client, make_app

    pb: Any = compiled.pb2  # type: ignore[attr-defined]
    for emit in (False, True):
        app = make_app(compiled, backend, emit_unpopulated=emit)  # type: ignore[arg-type]

        def printed(message: Any, emit: bool = emit) -> Any:
            return json_format.MessageToDict(message, always_print_fields_with_no_presence=emit)

        async with asgi_client(app) as http:
            unary = (await http.get("/v1/things/abc")).json()
            assert ("labels" in unary) is emit  # an empty map: printed only with emit
            ndjson = await http.get("/v1/things:watch?count=3")
            lines = [json.loads(line) for line in ndjson.text.splitlines()]
            sse = await http.get("/v1/things:watch?count=3", headers=SSE)
            events = [json.loads(e["data"]) for e in sse_events(sse.text)]
        expected = [
            printed(pb.WatchThingsResponse(event=pb.Event(seq=1, name="e1"))),
            printed(pb.WatchThingsResponse(event=pb.Event(seq=2, name="e2"))),
            printed(pb.WatchThingsResponse(heartbeat=True)),
            printed(pb.WatchThingsResponse(event=pb.Event(seq=3, name="e3"))),
        ]
        assert lines == events == expected, emit
        if not emit:
            assert expected[0] == {"event": {"seq": "1", "name": "e1"}}

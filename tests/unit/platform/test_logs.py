"""`access_line` writes exactly what structlog's configured chain would write."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator

import pytest
import structlog

from services.platform import logs
from services.platform.logs import access_line, configure_logging, get_logger

FIELDS = {
    "rpc": "/protomesh.document.v1.DocumentService/GetDocument",
    "code": "OK",
    "duration_ms": 0.412,
    "request_id": "r-1",
    "trace_id": None,
    "tenant": "acme",
    "user": "ada",
}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A sink; the logging configuration as it was is restored afterwards."""
    config, output = structlog.get_config(), dataclasses.replace(logs._output)
    context = structlog.contextvars.get_contextvars()
    yield io.StringIO()
    structlog.configure(**config)
    logs._output = output
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)


def lines(sink: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in sink.getvalue().splitlines()]


def test_the_line_is_structlogs_line(stream: io.StringIO) -> None:
    configure_logging("document", "info", "json", stream=stream)
    with structlog.contextvars.bound_contextvars(peer="ipv4:127.0.0.1:1"):
        get_logger().info("rpc", **FIELDS)
        access_line("rpc", **FIELDS)
    by_structlog, ours = lines(stream)
    assert by_structlog.pop("timestamp").endswith("Z")
    assert ours.pop("timestamp").endswith("Z")
    assert ours == by_structlog
    assert ours["service"] == "document"
    assert ours["peer"] == "ipv4:127.0.0.1:1"


def test_fields_win_over_context_like_structlog(stream: io.StringIO) -> None:
    configure_logging("document", "info", "json", stream=stream)
    access_line("rpc", service="override")
    assert lines(stream)[0]["service"] == "override"


def test_nothing_below_the_level(stream: io.StringIO) -> None:
    configure_logging("document", "warning", "json", stream=stream)
    access_line("rpc", **FIELDS)
    assert stream.getvalue() == ""


def test_console_format_goes_through_structlog(stream: io.StringIO) -> None:
    configure_logging("document", "info", "console", stream=stream)
    access_line("rpc", code="OK")
    text = stream.getvalue()
    assert "rpc" in text
    assert "code=OK" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)

"""Structured JSON logs (structlog): one line per RPC and per notable event,
with the service, RPC, tenant, user, request id, duration and status code.
Tokens and secrets are never logged."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog


@dataclass
class _Output:
    """Where and what `configure_logging` set up (for `access_line`)."""

    stream: TextIO | None = None  # None: stderr at the time of writing
    level: int = logging.INFO
    json: bool = True


_output = _Output()


def configure_logging(
    service: str, level: str = "info", fmt: str = "json", stream: TextIO | None = None
) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    _output.stream = stream
    _output.level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    _output.json = fmt == "json"


def access_line(event: str, **fields: Any) -> None:
    """An info line, as `get_logger().info(event, **fields)` writes it, rendered
    without structlog's processor chain: the interceptor chain writes one per RPC,
    and the chain is most of the platform's per-call cost (bench/rpc_overhead).
    Console-format logs go through structlog as usual."""
    if _output.level > logging.INFO:
        return
    if not _output.json:
        get_logger().info(event, **fields)
        return
    fields["event"] = event
    for key, value in structlog.contextvars.get_contextvars().items():
        fields.setdefault(key, value)
    fields["level"] = "info"
    fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    stream = _output.stream or sys.stderr
    stream.write(json.dumps(fields, default=repr) + "\n")
    stream.flush()


def get_logger(name: str = "protomesh") -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger

"""Model providers over the official `openai` SDK: one `AsyncOpenAI` client per
process for each provider (base URL + API key), and what a failed call says.

Both model clients — the task workers' generator and the search service's
embedder — get their client here, so calls to one provider share one connection
pool. The SDK retries transient answers (408, 409, 429, 5xx, connection errors,
timeouts) itself, `max_retries` times, waiting what the provider's
`Retry-After`/`retry-after-ms` says (up to two minutes), else an exponential
backoff with jitter. Our layer does not retry on top: a call that still fails
counts once against the caller's circuit breaker (resilience.CircuitBreaker), and
a half-open breaker's trial is a single request (`resilience.retries_for`).
When the SDK gives up on a rate-limited or overloaded provider, `retry_after_seconds`
tells the caller how long the provider asked it to stay away.

The clients are per event loop: an `httpx` connection pool cannot outlive the
loop it was made in (a test runs each case in a loop of its own; a service
process has one loop, so one client). The SDK is imported on first use (it takes
~0.5 s): a process with the offline models never loads it.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai
    from openai import AsyncOpenAI


def errors() -> tuple[type[BaseException], ...]:
    """What a failed call can raise: the SDK's errors, and, once a stream is open,
    its transport's (httpx2) and a malformed event's (ValueError). For `except
    providers.errors() as exc:` (evaluated only when something was raised)."""
    import httpx2
    import openai

    return (openai.OpenAIError, httpx2.HTTPError, TimeoutError, OSError, ValueError)


NO_KEY = "no-key"  # the SDK needs some key; with it no Authorization header is sent

_Key = tuple[str, str, float, int]
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)
_base: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def provider_client(
    base_url: str, api_key: str, timeout_seconds: float, max_retries: int
) -> AsyncOpenAI:
    """The shared client for `base_url` + `api_key` in this process (and loop),
    with these per-request options (`with_options`: same connection pool)."""
    from openai import AsyncOpenAI

    loop = asyncio.get_running_loop()
    url = base_url.rstrip("/")
    key = (url, api_key, float(timeout_seconds), int(max_retries))
    configured = _clients.setdefault(loop, {})
    client = configured.get(key)
    if client is None:
        bases = _base.setdefault(loop, {})
        base = bases.get((url, api_key))
        if base is None:
            base = bases[(url, api_key)] = AsyncOpenAI(
                base_url=url, api_key=api_key or NO_KEY, max_retries=0
            )
        client = configured[key] = base.with_options(
            timeout=timeout_seconds, max_retries=max_retries
        )
    return client


def auth_headers(api_key: str) -> dict[str, str | openai.Omit]:
    """Per-request headers: none with a key (the SDK sends `Bearer <key>`); without
    one, the Authorization header is left out (local servers need none)."""
    import openai

    return {} if api_key else {"Authorization": openai.Omit()}


async def close_clients() -> None:
    """Closes this loop's clients (their shared connection pools)."""
    loop = asyncio.get_running_loop()
    _clients.pop(loop, None)
    for client in (_base.pop(loop, None) or {}).values():
        await client.close()


def describe(error: BaseException, timeout_seconds: float) -> str:
    """What a failed provider call says, for task errors and logs: `HTTP 503: …`,
    `timed out after 2s`, `connection failed: …`."""
    import httpx2
    import openai

    if isinstance(error, openai.APIStatusError):
        detail = _message(error.body) or error.response.reason_phrase
        return f"HTTP {error.status_code}: {detail}"[:300]
    if isinstance(error, openai.APITimeoutError | TimeoutError | httpx2.TimeoutException):
        return f"timed out after {timeout_seconds:g}s"
    if isinstance(error, openai.APIConnectionError | httpx2.TransportError):
        cause = error.__cause__ or error
        return f"connection failed: {type(cause).__name__}: {cause}"[:300]
    return f"{type(error).__name__}: {error}"[:300]


def _message(body: object) -> str:
    if isinstance(body, Mapping):
        message = body.get("message")
        return message if isinstance(message, str) else ""
    return body if isinstance(body, str) else ""


def retry_after_seconds(error: BaseException, now: float | None = None) -> float:
    """How long the provider asked callers to wait (`retry-after-ms`, `Retry-After`
    in seconds or as an HTTP date) on the answer the SDK gave up on; 0 when it
    did not say."""
    import openai

    if not isinstance(error, openai.APIStatusError):
        return 0.0
    headers = error.response.headers
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) and seconds > 0 else 0.0
    when = email.utils.parsedate_tz(headers.get("retry-after") or "")
    if when is None:
        return 0.0
    return max(float(email.utils.mktime_tz(when)) - (time.time() if now is None else now), 0.0)

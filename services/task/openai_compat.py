"""`Generator` over any OpenAI-compatible chat-completions endpoint, streaming,
through the official `openai` SDK.

`chat.completions.create(stream=True, stream_options={"include_usage": True})`
on the process's shared client for the provider (services/platform/providers.py):
content deltas go to `on_delta` as they arrive; usage comes from the provider's
final usage chunk, or, when it sends none, is counted offline in the model's
encoding (services/platform/tokens.py) and marked estimated.

Retries are the SDK's (`max_retries`: connection errors, timeouts, 408/409/429/5xx,
honouring `Retry-After`), before anything is streamed; nothing here retries on top.
A call that still fails counts once against the circuit breaker, which fails
calls fast while the provider keeps failing; its half-open trial is a single
request. A `Retry-After` the SDK did not wait out (longer than it waits, or on
its last attempt) holds the breaker open until it has passed, so no other call
in this process goes out sooner either. Failures raise `ProviderUnavailable`
(gRPC UNAVAILABLE for the task's attempt), whose `retry_after_seconds` — the
longer of the breaker's remaining wait and the provider's `Retry-After` — keeps
the worker from retrying the task before a call can succeed.
"""

from __future__ import annotations

from typing import Any

from services.platform import providers
from services.platform.errors import Unavailable
from services.platform.resilience import CircuitBreaker, retries_for, trial
from services.task.generation import Generation, OnDelta, Prompt, Usage, count_tokens


class ProviderUnavailable(Unavailable):
    """The model provider failed, or its circuit is open. `retry_after_seconds`: how
    long until a call can succeed — the breaker lets one through, and the provider's
    `Retry-After` has passed (0 when neither holds calls back)."""

    def __init__(self, message: str, reason: str, retry_after_seconds: float = 0.0) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds


class OpenAICompatibleGenerator:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_seconds: float = 60.0,
        max_retries: int = 2,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.breaker = breaker or CircuitBreaker(f"model provider {model}")

    async def generate(
        self, prompt: Prompt, on_delta: OnDelta, max_output_tokens: int
    ) -> Generation:
        admitted = self.breaker.admit()
        if admitted is None:
            raise ProviderUnavailable(
                "model provider circuit open", "CIRCUIT_OPEN", self.breaker.retry_after_seconds()
            )
        streamed: list[str] = []
        try:
            with trial(admitted):
                usage = await self._stream(prompt, max_output_tokens, streamed, on_delta)
        except providers.errors() as exc:
            detail = providers.describe(exc, self.timeout_seconds)
            asked = providers.retry_after_seconds(exc)
            self.breaker.record_failure(detail, asked)  # a Retry-After holds every call back
            wait = max(self.breaker.retry_after_seconds(), asked)
            raise ProviderUnavailable(f"model provider failed: {detail}", "PROVIDER", wait) from exc
        self.breaker.record_success()
        text = "".join(streamed)
        if usage is None:
            usage = Usage(
                count_tokens(prompt.text(), self.model),
                count_tokens(text, self.model),
                estimated=True,
            )
        return Generation(text=text, model=self.model, usage=usage)

    async def _stream(
        self, prompt: Prompt, max_output_tokens: int, streamed: list[str], on_delta: OnDelta
    ) -> Usage | None:
        client = providers.provider_client(
            self.base_url, self.api_key, self.timeout_seconds, retries_for(self.max_retries)
        )
        messages: Any = prompt.messages()
        stream = await client.chat.completions.create(
            model=self.model,
            messages=messages,
            max_tokens=max_output_tokens,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=providers.auth_headers(self.api_key),
        )
        usage: Usage | None = None
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices or []:
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        streamed.append(delta)
                        await on_delta(delta)
                if chunk.usage is not None:
                    usage = Usage(
                        int(chunk.usage.prompt_tokens or 0),
                        int(chunk.usage.completion_tokens or 0),
                        estimated=False,
                    )
        return usage

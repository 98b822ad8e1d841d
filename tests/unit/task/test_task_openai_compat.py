"""The OpenAI-compatible generator (the `openai` SDK) against a local provider on
127.0.0.1 (real HTTP, streamed SSE): deltas and usage, usage estimated in the
model's encoding, Retry-After honoured by the SDK and passed on to the task's
retry, no retries on top of the SDK's, the shared breaker (opens on failed calls,
half-open admits one trial that is one request), timeouts → UNAVAILABLE."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time

import grpc
import pytest

from services.platform import providers, tokens
from services.platform.config import Settings
from services.platform.resilience import BreakerState, CircuitBreaker
from services.task.generation import (
    Generation,
    Prompt,
    Source,
    count_tokens,
    generator_from_settings,
)
from services.task.openai_compat import OpenAICompatibleGenerator, ProviderUnavailable
from tests.unit.platform.fake_provider import FakeProvider, Reply, fake_provider

PROMPT = Prompt("Why?", [Source(1, "documents/a", "a-0", "A", "Because.")])
CHAT = "/chat/completions"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _run(generator: OpenAICompatibleGenerator) -> tuple[list[str], Generation]:
    deltas: list[str] = []

    async def collect(text: str) -> None:
        deltas.append(text)

    return deltas, await generator.generate(PROMPT, collect, 64)


def gaps(provider: FakeProvider) -> list[float]:
    times = [r.at for r in provider.requests_to(CHAT)]
    return [b - a for a, b in itertools.pairwise(times)]


async def test_streams_deltas_and_takes_usage_from_the_final_chunk() -> None:
    async with fake_provider(answer="Because it is so [1].", chunk_size=5, usage=(50, 7)) as p:
        deltas, result = await _run(OpenAICompatibleGenerator(p.url, "m1", api_key="k"))
    assert "".join(deltas) == "Because it is so [1]."
    assert len(deltas) == 5
    assert (result.text, result.model) == ("Because it is so [1].", "m1")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (50, 7)
    assert result.usage.estimated is False
    [request] = p.requests_to(CHAT)
    assert request.body["max_tokens"] == 64
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["messages"] == PROMPT.messages()
    assert request.headers["authorization"] == "Bearer k"
    assert request.headers["user-agent"].startswith("AsyncOpenAI/Python")  # the official SDK


async def test_no_api_key_sends_no_authorization_header() -> None:
    async with fake_provider() as p:
        await _run(OpenAICompatibleGenerator(p.url, "llama3"))
    assert "authorization" not in p.requests_to(CHAT)[0].headers


async def test_usage_is_estimated_in_the_models_own_encoding() -> None:
    answer = "Привет, как дела? Это тест токенизации."
    async with fake_provider(answer=answer, send_usage=False) as p:
        _, result = await _run(OpenAICompatibleGenerator(p.url, "gpt-4o-mini"))
    usage = result.usage
    assert usage.estimated is True
    assert usage.output_tokens == tokens.count_tokens(answer, "gpt-4o-mini")
    assert usage.output_tokens == len(tokens.encoding("o200k_base").encode_ordinary(answer))
    assert usage.output_tokens != count_tokens(answer)  # cl100k_base counts this differently
    assert usage.input_tokens == count_tokens(PROMPT.text(), "gpt-4o-mini")


async def test_a_429_is_retried_after_the_providers_retry_after() -> None:
    script = [Reply(429, {"retry-after": "1.2"})]
    async with fake_provider(script=script) as p:
        _, result = await _run(OpenAICompatibleGenerator(p.url, "m1", max_retries=1))
    assert result.text == "Otters hold hands [1]."
    assert len(p.requests_to(CHAT)) == 2
    # The SDK's own first backoff is at most 0.5 s: this wait is the provider's.
    assert gaps(p)[0] >= 1.2


async def test_a_retry_after_beyond_the_sdks_wait_reaches_the_task_retry() -> None:
    breaker = CircuitBreaker("p", failure_threshold=5)
    async with fake_provider(script=[Reply(429, {"retry-after": "300"})]) as p:
        generator = OpenAICompatibleGenerator(p.url, "m1", max_retries=2, breaker=breaker)
        with pytest.raises(ProviderUnavailable, match="HTTP 429") as caught:
            await _run(generator)
        assert len(p.requests_to(CHAT)) == 1  # the SDK does not wait 5 minutes, nor do we
        assert 290 <= caught.value.retry_after_seconds <= 300
        assert caught.value.code is grpc.StatusCode.UNAVAILABLE
        # Nor does any other call in this process: the breaker holds them back.
        with pytest.raises(ProviderUnavailable, match="circuit open") as refused:
            await _run(generator)
        assert len(p.requests_to(CHAT)) == 1
        assert 290 <= refused.value.retry_after_seconds <= 300


async def test_failing_calls_are_retried_by_the_sdk_only_then_the_breaker_opens() -> None:
    clock = Clock()
    breaker = CircuitBreaker("provider", failure_threshold=2, reset_seconds=30, clock=clock)
    fast = {"retry-after-ms": "10"}
    async with fake_provider(script=[Reply(500, fast)] * 4) as p:
        generator = OpenAICompatibleGenerator(p.url, "m1", max_retries=1, breaker=breaker)
        for calls in (1, 2):
            with pytest.raises(ProviderUnavailable, match="HTTP 500: scripted 500"):
                await _run(generator)
            # one request and the SDK's one retry per call: nothing retried on top
            assert len(p.requests_to(CHAT)) == 2 * calls
            clock.now += 1  # past the 10 ms the provider asked for
        assert breaker.state is BreakerState.OPEN
        with pytest.raises(ProviderUnavailable, match="circuit open") as caught:
            await _run(generator)
        assert len(p.requests_to(CHAT)) == 4  # refused without reaching the provider
        assert caught.value.retry_after_seconds == 29.0  # opened at 1, asked at 2
        assert caught.value.code is grpc.StatusCode.UNAVAILABLE


async def test_client_errors_are_not_retried_and_count_against_the_breaker() -> None:
    breaker = CircuitBreaker("provider", failure_threshold=2, reset_seconds=60)
    async with fake_provider(script=[Reply(400)] * 2) as p:
        generator = OpenAICompatibleGenerator(p.url, "m1", max_retries=3, breaker=breaker)
        for _ in range(2):
            with pytest.raises(ProviderUnavailable, match="HTTP 400"):
                await _run(generator)
        assert len(p.requests_to(CHAT)) == 2
        with pytest.raises(ProviderUnavailable, match="circuit open"):
            await _run(generator)
    assert len(p.requests_to(CHAT)) == 2


@pytest.mark.parametrize("trial_status", [500, 200])
async def test_half_open_admits_one_of_five_concurrent_calls_as_one_request(
    trial_status: int,
) -> None:
    clock = Clock()
    breaker = CircuitBreaker("provider", failure_threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure("down")
    clock.now = 10  # half-open
    slow_trial = Reply(trial_status, {"retry-after-ms": "10"}, delay_seconds=0.2)
    async with fake_provider(script=[slow_trial]) as p:
        generator = OpenAICompatibleGenerator(p.url, "m1", max_retries=3, breaker=breaker)
        outcomes = await asyncio.gather(
            *(_run(generator) for _ in range(5)), return_exceptions=True
        )
    refused = [o for o in outcomes if isinstance(o, ProviderUnavailable) and "circuit" in str(o)]
    assert len(refused) == 4
    assert len(p.requests_to(CHAT)) == 1  # the trial is one request, despite max_retries=3
    if trial_status == 200:
        assert breaker.state is BreakerState.CLOSED
        assert sum(isinstance(o, tuple) for o in outcomes) == 1
    else:
        assert breaker.state is BreakerState.OPEN
        assert sum(isinstance(o, ProviderUnavailable) for o in outcomes) == 5


async def test_a_provider_slower_than_the_timeout_is_unavailable() -> None:
    breaker = CircuitBreaker("provider", failure_threshold=5)
    async with fake_provider(script=[Reply(delay_seconds=2.0)]) as p:
        generator = OpenAICompatibleGenerator(
            p.url, "m1", timeout_seconds=0.3, max_retries=0, breaker=breaker
        )
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable, match=r"timed out after 0\.3s") as caught:
            await _run(generator)
    assert time.monotonic() - started < 1.5
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert "timed out" in breaker.last_error


async def test_a_stream_that_stalls_midway_fails_without_a_retry() -> None:
    async with fake_provider(script=[Reply(stall_seconds=2.0)], chunk_size=4) as p:
        generator = OpenAICompatibleGenerator(p.url, "m1", timeout_seconds=0.3, max_retries=2)
        deltas: list[str] = []

        async def collect(text: str) -> None:
            deltas.append(text)

        with pytest.raises(ProviderUnavailable, match="timed out"):
            await generator.generate(PROMPT, collect, 64)
    assert deltas == ["Otte"]  # what was streamed stays streamed; not sent again
    assert len(p.requests_to(CHAT)) == 1


async def test_one_client_per_provider_in_a_process() -> None:
    async with fake_provider() as p, fake_provider() as other:
        first = providers.provider_client(p.url, "k", 60.0, 2)
        assert providers.provider_client(p.url + "/", "k", 60.0, 2) is first
        again = providers.provider_client(p.url, "k", 5.0, 0)  # other options, same pool
        assert again is not first
        assert again._client is first._client
        assert again.max_retries == 0
        assert providers.provider_client(p.url, "other-key", 60.0, 2)._client is not first._client
        assert providers.provider_client(other.url, "k", 60.0, 2)._client is not first._client
        await providers.close_clients()
        assert providers.provider_client(p.url, "k", 60.0, 2) is not first


def test_the_generator_comes_from_the_environment() -> None:
    assert generator_from_settings(Settings.from_env({}).generator).model == "extractive-v2"
    environ = {
        "PROTOMESH_GENERATOR_BASE_URL": "http://127.0.0.1:9/v1",
        "PROTOMESH_GENERATOR_MODEL": "m2",
        "PROTOMESH_GENERATOR_TIMEOUT_SECONDS": "7",
        "PROTOMESH_GENERATOR_MAX_RETRIES": "4",
    }
    chosen = generator_from_settings(Settings.from_env(environ).generator)
    assert isinstance(chosen, OpenAICompatibleGenerator)
    assert (chosen.model, chosen.timeout_seconds, chosen.max_retries) == ("m2", 7.0, 4)


def test_processes_with_the_offline_models_never_load_the_sdk() -> None:
    probe = (
        "import sys, services.search.embedders, services.task.runner, services.task.worker; "
        "print('openai' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"  # importing it takes ~0.5 s

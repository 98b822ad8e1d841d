"""The OpenAI-compatible generator against a local fake provider (real HTTP,
streamed SSE): deltas, usage from the final chunk or estimated, retries, the
circuit breaker."""

from __future__ import annotations

import pytest

from services.platform.config import Settings
from services.platform.errors import Unavailable
from services.platform.resilience import CircuitBreaker
from services.task.generation import Prompt, Source, count_tokens, generator_from_settings
from services.task.openai_compat import OpenAICompatibleGenerator
from tests.integration.task.fake_openai import Script, fake_openai

PROMPT = Prompt("Why?", [Source(1, "documents/a", "a-0", "A", "Because.")])


async def _run(generator: OpenAICompatibleGenerator) -> tuple[list[str], object]:
    deltas: list[str] = []

    async def collect(text: str) -> None:
        deltas.append(text)

    return deltas, await generator.generate(PROMPT, collect, 64)


async def test_streams_deltas_and_takes_usage_from_the_final_chunk() -> None:
    script = Script(answer="Because it is so [1].", chunk_size=5, usage=(50, 7))
    async with fake_openai(script) as url:
        deltas, result = await _run(OpenAICompatibleGenerator(url, "m1", api_key="k"))
    assert "".join(deltas) == "Because it is so [1]."
    assert len(deltas) == 5
    assert result.text == "Because it is so [1]."  # type: ignore[attr-defined]
    assert result.usage.input_tokens == 50  # type: ignore[attr-defined]
    assert result.usage.estimated is False  # type: ignore[attr-defined]
    assert script.requests[0]["max_tokens"] == 64
    assert script.requests[0]["stream_options"] == {"include_usage": True}


async def test_usage_is_estimated_offline_when_the_provider_sends_none() -> None:
    script = Script(answer="Short answer.", send_usage=False)
    async with fake_openai(script) as url:
        _, result = await _run(OpenAICompatibleGenerator(url, "m1"))
    usage = result.usage  # type: ignore[attr-defined]
    assert usage.estimated is True
    assert usage.output_tokens == count_tokens("Short answer.")
    assert usage.input_tokens == count_tokens(PROMPT.text())


async def test_transient_provider_errors_are_retried() -> None:
    script = Script(answer="ok", fail_first=2, fail_status=503)
    async with fake_openai(script) as url:
        generator = OpenAICompatibleGenerator(url, "m1", max_retries=2, backoff_base_seconds=0.01)
        _, result = await _run(generator)
    assert result.text == "ok"  # type: ignore[attr-defined]
    assert len(script.requests) == 3


async def test_client_errors_are_not_retried_and_the_breaker_opens() -> None:
    script = Script(fail_first=100, fail_status=400)
    breaker = CircuitBreaker("provider", failure_threshold=2, reset_seconds=60)
    async with fake_openai(script) as url:
        generator = OpenAICompatibleGenerator(url, "m1", breaker=breaker)
        for _ in range(2):
            with pytest.raises(Unavailable):
                await _run(generator)
        assert len(script.requests) == 2
        with pytest.raises(Unavailable, match="circuit open"):
            await _run(generator)
    assert len(script.requests) == 2


def test_the_generator_comes_from_the_environment() -> None:
    assert generator_from_settings(Settings.from_env({}).generator).model == "extractive-v2"
    environ = {"PROTOMESH_GENERATOR_BASE_URL": "http://x/v1", "PROTOMESH_GENERATOR_MODEL": "m2"}
    chosen = generator_from_settings(Settings.from_env(environ).generator)
    assert isinstance(chosen, OpenAICompatibleGenerator)
    assert chosen.model == "m2"

"""The one backoff rule and retryable-status set every remote client uses."""

from __future__ import annotations

import random

from services.platform.resilience import RETRYABLE_HTTP_STATUS, backoff_delay


def test_backoff_is_full_jitter_under_a_capped_exponential() -> None:
    rng = random.Random(1)
    for retry in range(10):
        ceiling = min(10.0, 0.5 * 2**retry)
        delays = [backoff_delay(retry, 0.5, 10.0, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # the whole range is used, not a fixed wait


def test_a_negative_retry_counts_as_the_first() -> None:
    rng = random.Random(2)
    assert all(backoff_delay(-3, 1.0, 5.0, rng) <= 1.0 for _ in range(100))


def test_only_transient_http_answers_are_retried() -> None:
    assert {429, 503, 504, 408} <= RETRYABLE_HTTP_STATUS
    assert not {400, 401, 403, 404, 422} & RETRYABLE_HTTP_STATUS

"""Retry timing shared by every client of a remote dependency: how long to back
off before the next attempt, and which HTTP answers are worth another attempt.

One rule everywhere (model providers, the change feed, task retries): exponential
backoff with full jitter — the wait before retry `n` (from 0) is uniform in
[0, min(cap, base · 2^n)] — so clients that failed together do not retry together.
"""

from __future__ import annotations

import random

# Transient answers of an HTTP model provider: timeouts, conflicts, rate limits and
# server-side failures. Anything else 4xx is the request's fault and is not retried.
RETRYABLE_HTTP_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def backoff_delay(retry: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `retry` (0 = the first retry)."""
    ceiling = min(cap, base * (2 ** max(retry, 0)))
    return (rng or random).uniform(0.0, ceiling)

"""Degraded-search reasons are free text; the metric label is one of a few words."""

from __future__ import annotations

import pytest

from services.search.metrics import degraded_reason_label


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("no chunk matching the filter has an embedding yet", "no_embeddings"),
        ("embedder circuit breaker is open: ConnectError: refused", "breaker_open"),
        ("query embedding failed: embedder circuit breaker is half_open", "breaker_open"),
        ("query embedding failed: TimeoutError", "timeout"),
        ("query embedding failed: the request timed out", "timeout"),
        ("query embedding failed: HTTP 500 from the provider", "embedder_error"),
        ("", "embedder_error"),
    ],
)
def test_degraded_reasons_map_to_bounded_labels(reason: str, label: str) -> None:
    assert degraded_reason_label(reason) == label

from __future__ import annotations

import pytest

from services.cost.money import (
    Rates,
    Tokens,
    cost_micros,
    estimate_micros,
    format_micros,
    round_half_up,
)


def test_round_half_up_rounds_exact_halves_up() -> None:
    assert round_half_up(500_000, 1_000_000) == 1
    assert round_half_up(499_999, 1_000_000) == 0
    assert round_half_up(1_500_000, 1_000_000) == 2
    assert round_half_up(2_500_000, 1_000_000) == 3  # not banker's rounding


def test_cost_rounds_once_per_record_not_per_token_kind() -> None:
    rates = Rates(input=400_000, output=400_000)  # 0.4 micros per token each
    # per-kind rounding would give 0 + 0; summing first gives 0.8 → 1
    assert cost_micros(Tokens(input=1, output=1), rates) == 1


def test_cost_is_exact_integer_arithmetic_for_large_counts() -> None:
    rates = Rates(input=2_500_000, output=10_000_000, cached_input=1_250_000, cache_write=3_750_000)
    tokens = Tokens(input=100_000_000, output=100_000_000, cached_input=3, cache_write=1)
    expected_numerator = (
        100_000_000 * 2_500_000 + 100_000_000 * 10_000_000 + 3 * 1_250_000 + 3_750_000
    )
    assert cost_micros(tokens, rates) == (2 * expected_numerator + 1_000_000) // 2_000_000


def test_free_model_costs_zero() -> None:
    assert cost_micros(Tokens(input=10**8, output=10**8), Rates()) == 0


def test_long_context_prices_apply_above_the_threshold_to_the_whole_call() -> None:
    rates = Rates(
        input=1_000_000,
        output=2_000_000,
        long_context_threshold_tokens=100,
        long_context_input=3_000_000,
        long_context_output=0,
    )
    assert cost_micros(Tokens(input=100, output=10), rates) == 100 + 20
    # 101 prompt tokens: input at the long-context price, output unchanged (0 = same)
    assert cost_micros(Tokens(input=101, output=10), rates) == 303 + 20
    # cached and cache-write tokens count towards the prompt size
    assert cost_micros(Tokens(input=90, cached_input=11), rates) == 270


def test_estimate_assumes_every_output_token() -> None:
    rates = Rates(input=150_000, output=600_000)
    assert estimate_micros(1000, 500, rates) == 150 + 300


def test_negative_or_float_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        Tokens(input=-1)
    with pytest.raises(ValueError, match="non-negative"):
        Rates(input=1.5)  # type: ignore[arg-type]


def test_format_micros_is_exact() -> None:
    assert format_micros(1_234_567) == "1.234567 USD"
    assert format_micros(5) == "0.000005 USD"

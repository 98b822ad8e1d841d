"""Money as integers: micro-units (millionths) of the price book's currency.

Rating rule (one place, used by RecordUsage, CommitReservation, EstimateCost and
Reserve-by-estimate): every token kind contributes `tokens * price_per_mtok`
micro-units per million tokens; the contributions are summed exactly as integers
and divided by 1,000,000 **once per record**, rounding half up. So a record of
1 input token at 0.5 micros/token (500,000 per Mtok) costs 1 micro (0.5 rounds
up), and two such records cost 2 micros — rounding never happens per token kind.

Long-context tier: when a price sets `long_context_threshold_tokens` and the
call's prompt (input + cached input + cache write tokens) is larger than the
threshold, the whole call's input and output tokens are rated at the
long-context prices (a zero long-context price means "same as the standard
one"). Cached-input and cache-write prices do not change.
"""

from __future__ import annotations

from dataclasses import dataclass

MICROS_PER_UNIT = 1_000_000
TOKENS_PER_MTOK = 1_000_000


@dataclass(frozen=True)
class Rates:
    """Prices per one million tokens, in micro-units."""

    input: int = 0
    output: int = 0
    cached_input: int = 0
    cache_write: int = 0
    long_context_threshold_tokens: int = 0
    long_context_input: int = 0
    long_context_output: int = 0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


@dataclass(frozen=True)
class Tokens:
    """Token counts of one call, by kind."""

    input: int = 0
    output: int = 0
    cached_input: int = 0
    cache_write: int = 0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")

    @property
    def prompt(self) -> int:
        return self.input + self.cached_input + self.cache_write


def round_half_up(numerator: int, denominator: int) -> int:
    """`numerator / denominator` rounded half up, for non-negative integers."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up takes a non-negative numerator and positive denominator")
    return (2 * numerator + denominator) // (2 * denominator)


def is_long_context(tokens: Tokens, rates: Rates) -> bool:
    threshold = rates.long_context_threshold_tokens
    return threshold > 0 and tokens.prompt > threshold


def cost_micros(tokens: Tokens, rates: Rates) -> int:
    """The cost of one call in micro-units (see the module docstring for the rule)."""
    input_rate, output_rate = rates.input, rates.output
    if is_long_context(tokens, rates):
        input_rate = rates.long_context_input or input_rate
        output_rate = rates.long_context_output or output_rate
    numerator = (
        tokens.input * input_rate
        + tokens.output * output_rate
        + tokens.cached_input * rates.cached_input
        + tokens.cache_write * rates.cache_write
    )
    return round_half_up(numerator, TOKENS_PER_MTOK)


def estimate_micros(input_tokens: int, max_output_tokens: int, rates: Rates) -> int:
    """Upper bound of a prospective call: all input uncached, every output token used."""
    return cost_micros(Tokens(input=input_tokens, output=max_output_tokens), rates)


def format_micros(amount: int, currency_code: str = "USD") -> str:
    """`1234567` → `1.234567 USD` (exact; for people, never for arithmetic)."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), MICROS_PER_UNIT)
    return f"{sign}{whole}.{frac:06d} {currency_code}".rstrip()

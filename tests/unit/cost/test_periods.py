from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.cost.periods import EPOCH, Period, period_end, period_start, period_starts


def test_day_and_month_start_at_utc_midnight() -> None:
    at = datetime(2025, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert period_start(Period.DAY, at) == datetime(2025, 3, 31, tzinfo=UTC)
    assert period_start(Period.MONTH, at) == datetime(2025, 3, 1, tzinfo=UTC)
    assert period_end(Period.DAY, at) == datetime(2025, 4, 1, tzinfo=UTC)
    assert period_end(Period.MONTH, at) == datetime(2025, 4, 1, tzinfo=UTC)


def test_periods_roll_over_exactly_at_the_boundary() -> None:
    boundary = datetime(2026, 1, 1, tzinfo=UTC)
    before = boundary - timedelta(microseconds=1)
    assert period_start(Period.MONTH, before) == datetime(2025, 12, 1, tzinfo=UTC)
    assert period_end(Period.MONTH, before) == boundary
    assert period_start(Period.MONTH, boundary) == boundary
    assert period_start(Period.DAY, boundary) == boundary


def test_local_times_are_converted_to_utc() -> None:
    # 01:00 on the 1st in UTC+02:00 is still the previous day (and month) in UTC
    at = datetime(2025, 5, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert period_start(Period.DAY, at) == datetime(2025, 4, 30, tzinfo=UTC)
    assert period_start(Period.MONTH, at) == datetime(2025, 4, 1, tzinfo=UTC)


def test_total_never_rolls_over() -> None:
    at = datetime(2031, 7, 4, tzinfo=UTC)
    assert period_start(Period.TOTAL, at) == EPOCH
    assert period_end(Period.TOTAL, at) is None


def test_period_starts_are_indexed_by_period_number() -> None:
    at = datetime(2025, 2, 14, 12, tzinfo=UTC)
    starts = period_starts(at)
    assert starts[Period.DAY - 1] == datetime(2025, 2, 14, tzinfo=UTC)
    assert starts[Period.MONTH - 1] == datetime(2025, 2, 1, tzinfo=UTC)
    assert starts[Period.TOTAL - 1] == EPOCH


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        period_start(Period.DAY, datetime(2025, 1, 1))

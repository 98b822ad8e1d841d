"""Budget accounting periods: calendar boundaries in UTC.

A day starts at 00:00 UTC, a month on the 1st at 00:00 UTC; a TOTAL budget has
one period that started at the Unix epoch and never ends. Spend is counted in the
period its usage time falls in, so a budget "rolls over" simply because the
current period's start moves: nothing is reset, old counters stay as history.

Time is read through a `Clock` so tests can move it instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import IntEnum

Clock = Callable[[], datetime]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Period(IntEnum):
    """Mirrors `protomesh.cost.v1.Period`."""

    DAY = 1
    MONTH = 2
    TOTAL = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime; periods need an aware (UTC) time")
    return at.astimezone(UTC)


def period_start(period: Period | int, at: datetime) -> datetime:
    """Start of the period that contains `at`."""
    at = _utc(at)
    kind = Period(period)
    if kind is Period.DAY:
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind is Period.MONTH:
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return EPOCH


def period_end(period: Period | int, at: datetime) -> datetime | None:
    """End (exclusive) of the period that contains `at`; None for TOTAL."""
    start = period_start(period, at)
    kind = Period(period)
    if kind is Period.DAY:
        return start + timedelta(days=1)
    if kind is Period.MONTH:
        if start.month == 12:
            return start.replace(year=start.year + 1, month=1)
        return start.replace(month=start.month + 1)
    return None


def period_starts(at: datetime) -> list[datetime]:
    """The start of every period kind at `at`, indexed like SQL arrays by the
    `Period` number (element 1 = DAY, 2 = MONTH, 3 = TOTAL)."""
    return [period_start(kind, at) for kind in Period]


def month_start(at: datetime) -> datetime:
    return period_start(Period.MONTH, at)

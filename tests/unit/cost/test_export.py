from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from services.cost.export import COLUMNS, to_csv


def row(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "usage_time": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "id": "u1",
        "model": "m",
        "user_id": "alice",
        "api_key_id": "",
        "task": "",
        "provenance": 1,
        "input_tokens": 1,
        "output_tokens": 2,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "amount_micros": 3,
        "currency_code": "USD",
        "price_version": 1,
        "reservation_id": None,
        "over_estimate": False,
        "idempotency_key": "k",
    }
    base.update(over)
    return base


def test_header_then_rows_with_rfc4180_quoting() -> None:
    text = to_csv([row(user_id='a "quoted", user\nwith newline')], header=True).decode()
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == list(COLUMNS)
    assert parsed[1][3] == 'a "quoted", user\nwith newline'
    assert parsed[1][0] == "2025-01-02T03:04:05Z"


def test_formula_like_cells_are_defused() -> None:
    text = to_csv([row(user_id="=HYPERLINK(1)")]).decode()
    assert next(iter(csv.reader(io.StringIO(text))))[3] == "'=HYPERLINK(1)"

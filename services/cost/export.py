"""CSV of usage records (ExportSpend): RFC 4180 quoting by the `csv` module, one
header row, then one row per record. Free-text cells that a spreadsheet would
run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) get a leading `'`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

COLUMNS = (
    "usage_time",
    "name",
    "model",
    "user_id",
    "api_key_id",
    "task",
    "provenance",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "amount_micros",
    "currency_code",
    "price_version",
    "reservation",
    "over_estimate",
    "idempotency_key",
)
_PROVENANCE = {0: "", 1: "measured", 2: "estimated"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_csv(rows: Iterable[Any], header: bool = False) -> bytes:
    """CSV lines (CRLF-terminated) for usage-record rows, optionally with the header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row["usage_time"].isoformat().replace("+00:00", "Z"),
                f"usageRecords/{row['id']}",
                row["model"],
                _text(row["user_id"]),
                _text(row["api_key_id"]),
                row["task"],
                _PROVENANCE.get(row["provenance"], str(row["provenance"])),
                row["input_tokens"],
                row["output_tokens"],
                row["cached_input_tokens"],
                row["cache_write_tokens"],
                row["amount_micros"],
                row["currency_code"],
                row["price_version"],
                f"reservations/{row['reservation_id']}" if row["reservation_id"] else "",
                "true" if row["over_estimate"] else "false",
                _text(row["idempotency_key"]),
            )
        )
    return buffer.getvalue().encode()

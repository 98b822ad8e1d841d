"""The one loader of every service's named SQL queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.platform.db import named_queries

SERVICES = ("document", "search", "task", "cost")
ROOT = Path(__file__).resolve().parents[3] / "services"


def test_blocks_are_found_by_name_with_their_comments_and_no_trailing_semicolon(
    tmp_path: Path,
) -> None:
    sql = tmp_path / "queries.sql"
    sql.write_text(
        "-- Named queries (preamble, not a query).\n\n"
        "-- name: first\n-- What it does.\nSELECT 1;\n\n"
        "-- name: second \nSELECT $1::int\nWHERE true\n"
    )
    assert named_queries(sql) == {
        "first": "-- What it does.\nSELECT 1",
        "second": "SELECT $1::int\nWHERE true",
    }


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_query_has_a_body(service: str) -> None:
    queries = named_queries(ROOT / service / "sql" / "queries.sql")
    assert queries
    assert all(body.strip() for body in queries.values())

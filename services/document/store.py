"""Persistence of DocumentService: the named queries in `sql/queries.sql`, run
inside tenant transactions (row-level security keeps tenants apart).

Every write takes the feed lock first, then does its work and writes its change
row in one statement: updates and deletes in a tenant transaction (`lock_feed`,
then one statement), creates, the hot path of ingest, in a single call of
`document.create_document` (one round trip).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg

from services.document.documents import NewDocument, Ordering
from services.platform.db import Pool, named_queries, settings_transaction, tenant_transaction
from services.platform.errors import AlreadyExists

Row: TypeAlias = asyncpg.Record


Q = named_queries(Path(__file__).resolve().parent / "sql" / "queries.sql")

_LIST_COLUMNS = {
    True: "*",
    False: (
        "tenant_id, id, title, '' AS content, mime_type, labels, metadata, source_uri, "
        "create_time, update_time, sequence, etag, size_bytes"
    ),
}
_ORDER_COLUMNS = {"create_time": "create_time", "update_time": "update_time", "name": "id"}


@dataclass(frozen=True)
class Created:
    row: Row
    replayed: bool


class DocumentStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def create(
        self,
        tenant: str,
        document_id: str,
        document: NewDocument,
        request_id: str,
        fingerprint: bytes,
    ) -> Created:
        """Creates a document, or replays the create that used `request_id`."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                Q["create_document"],
                tenant,
                document_id,
                document.title,
                document.content,
                document.mime_type,
                document.labels,
                document.metadata,
                document.source_uri,
                document.size_bytes,
                request_id or None,
                fingerprint,
            )
        assert row is not None
        if row["outcome"] == "created":
            return Created(row, replayed=False)
        if row["outcome"] == "replayed":  # the caller checks it is the same request
            return Created(row, replayed=True)
        raise AlreadyExists(
            f"document {document_id!r} already exists",
            reason="DOCUMENT_EXISTS",
            metadata={"name": "documents/" + document_id},
        )

    async def get(self, tenant: str, document_id: str) -> Row | None:
        async with tenant_transaction(self.pool, tenant) as conn:
            row: Row | None = await conn.fetchrow(Q["get_document"], document_id)
            return row

    async def get_many(self, tenant: str, document_ids: Sequence[str]) -> dict[str, Row]:
        async with tenant_transaction(self.pool, tenant) as conn:
            rows = await conn.fetch(Q["get_documents"], list(document_ids))
        return {row["id"]: row for row in rows}

    async def list_page(
        self,
        tenant: str,
        filter_sql: str,
        filter_params: Sequence[Any],
        ordering: Ordering,
        after: Mapping[str, Any] | None,
        limit: int,
        full: bool,
    ) -> list[Row]:
        """One keyset page: rows after `after` (`{"k": key, "i": id}`) in `ordering`.

        The SQL text is assembled from fixed fragments and the filter compiler's
        output only; every value is a parameter."""
        params = list(filter_params)
        column = _ORDER_COLUMNS[ordering.key]
        direction = "DESC" if ordering.descending else "ASC"
        compare = "<" if ordering.descending else ">"
        where = [f"({filter_sql})"]
        if after is not None:
            if ordering.key == "name":
                params.append(str(after["i"]))
                where.append(f"id {compare} ${len(params)}")
            else:
                params.append(datetime.fromisoformat(str(after["k"])))
                params.append(str(after["i"]))
                where.append(f"({column}, id) {compare} (${len(params) - 1}, ${len(params)})")
        params.append(limit)
        order = f"{column} {direction}"
        if ordering.key != "name":
            order += f", id {direction}"
        sql = (
            f"SELECT {_LIST_COLUMNS[full]} FROM document.documents "
            f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ${len(params)}"
        )
        async with tenant_transaction(self.pool, tenant) as conn:
            rows: list[Row] = await conn.fetch(sql, *params)
            return rows

    async def update(
        self,
        tenant: str,
        document_id: str,
        etag: str,
        fields: frozenset[str],
        values: NewDocument,
    ) -> tuple[Row | None, str | None]:
        """(updated row, None), or (None, current etag) when the etag did not match,
        or (None, None) when there is no such document."""
        async with tenant_transaction(self.pool, tenant) as conn:
            await conn.execute(Q["lock_feed"])
            row = await conn.fetchrow(
                Q["update_document"],
                document_id,
                etag,
                "title" in fields,
                values.title,
                "content" in fields,
                values.content,
                values.size_bytes,
                "mime_type" in fields,
                values.mime_type,
                "labels" in fields,
                values.labels,
                "metadata" in fields,
                values.metadata,
                "source_uri" in fields,
                values.source_uri,
            )
            if row is not None:
                return row, None
            current: str | None = await conn.fetchval(Q["document_exists"], document_id)
            return None, current

    async def delete(
        self, tenant: str, document_id: str, etag: str
    ) -> tuple[int | None, str | None]:
        """(sequence of the deletion, None), or (None, current etag) / (None, None)
        as for `update`."""
        async with tenant_transaction(self.pool, tenant) as conn:
            await conn.execute(Q["lock_feed"])
            sequence: int | None = await conn.fetchval(Q["delete_document"], document_id, etag)
            if sequence is not None:
                return sequence, None
            current: str | None = await conn.fetchval(Q["document_exists"], document_id)
            return None, current

    async def changes_after(
        self, tenant: str | None, after: int, limit: int, with_content: bool
    ) -> list[Row]:
        """Changes after `after` visible to `tenant` (None: every tenant's)."""
        if tenant is None:
            transaction = settings_transaction(self.pool, watch_all="on")
            query = Q["changes_after_all_tenants"]
        else:
            transaction = tenant_transaction(self.pool, tenant)
            query = Q["changes_after"]
        async with transaction as conn:
            rows: list[Row] = await conn.fetch(query, after, limit, with_content)
            return rows

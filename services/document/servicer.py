"""DocumentService RPCs → domain rules and store calls.

Auth, scopes, request validation, deadlines and error mapping happen in the
platform's interceptor chain before and after these handlers; the tenant is
always the verified caller's (`principal().tenant_id`). Another tenant's
document is indistinguishable from a missing one: NOT_FOUND, never
PERMISSION_DENIED.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import json_format

from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc
from services.document import documents
from services.document.convert import document_from_row
from services.document.documents import (
    DEFAULT_MIME_TYPE,
    DEFAULT_PAGE_SIZE,
    MAX_BATCH_ITEMS,
    MAX_PAGE_SIZE,
    NewDocument,
    document_id_of,
    document_name,
)
from services.document.feed import WatchOptions, watch
from services.document.store import Created, DocumentStore
from services.platform.auth import WATCH_ALL_SCOPE
from services.platform.context import principal
from services.platform.errors import (
    Aborted,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ProtomeshError,
    QuotaViolation,
    ResourceExhausted,
)
from services.platform.filtering import FilterField, compile_filter
from services.platform.idempotency import ensure_replay
from services.platform.notify import Hub
from services.platform.pagination import PageTokens, clamp_page_size
from services.platform.validation import violations

FILTER_FIELDS = {
    "labels": FilterField("labels", "map"),
    "mime_type": FilterField("mime_type", "string"),
    "title": FilterField("title", "string"),
    "create_time": FilterField("create_time", "timestamp"),
    "update_time": FilterField("update_time", "timestamp"),
}


class DocumentServicer(pb_grpc.DocumentServiceServicer):
    def __init__(
        self,
        store: DocumentStore,
        hub: Hub,
        page_tokens: PageTokens,
        max_document_bytes: int,
        watch_options: WatchOptions,
        max_batch_items: int = MAX_BATCH_ITEMS,
    ) -> None:
        self.store = store
        self.hub = hub
        self.page_tokens = page_tokens
        self.max_document_bytes = max_document_bytes
        self.watch_options = watch_options
        self.max_batch_items = max_batch_items

    # -- create --------------------------------------------------------------

    async def _create(self, document: pb.Document, document_id: str, request_id: str) -> Created:
        new = documents.new_document(document, self.max_document_bytes)
        chosen_id = document_id or uuid.uuid4().hex
        # With a request id but no explicit id, the fingerprint leaves the id out,
        # so a replay (which would draw another random id) still matches.
        fingerprint = documents.request_fingerprint(new, document_id)
        created = await self.store.create(
            principal().tenant_id, chosen_id, new, request_id, fingerprint
        )
        if created.replayed:
            ensure_replay(
                created.row["request_hash"],
                fingerprint,
                "request_id",
                request_id,
                "a different document",
            )
        return created

    async def CreateDocument(self, request: pb.CreateDocumentRequest, context: Any) -> pb.Document:
        created = await self._create(request.document, request.document_id, request.request_id)
        return document_from_row(created.row)

    async def BatchCreateDocuments(
        self, request_iterator: AsyncIterator[pb.BatchCreateDocumentsRequest], context: Any
    ) -> pb.BatchCreateDocumentsResponse:
        """Items are read and stored one at a time (gRPC flow control pushes back on
        the sender while an item is being stored); only the small per-item
        results are kept."""
        response = pb.BatchCreateDocumentsResponse()
        index = 0
        async for item in request_iterator:
            if index >= self.max_batch_items:
                raise ResourceExhausted(
                    f"a BatchCreateDocuments stream carries at most {self.max_batch_items} items; "
                    f"the first {self.max_batch_items} were stored (re-sending them with the same "
                    "request ids replays them)",
                    [QuotaViolation("BatchCreateDocuments.items", f"max {self.max_batch_items}")],
                )
            result = pb.BatchCreateResult(index=index)
            try:
                found = violations(item)
                if found:
                    raise InvalidArgument(
                        "; ".join(f"{v.field}: {v.description}" for v in found), found
                    )
                created = await self._create(item.document, item.document_id, item.request_id)
            except ProtomeshError as exc:
                result.error.CopyFrom(exc.to_status())
                response.failed_count += 1
            else:
                result.name = document_name(created.row["id"])
                result.sequence = created.row["sequence"]
                result.replayed = created.replayed
                if created.replayed:
                    response.replayed_count += 1
                else:
                    response.created_count += 1
            response.results.append(result)
            index += 1
        return response

    # -- read ------------------------------------------------------------------

    async def GetDocument(self, request: pb.GetDocumentRequest, context: Any) -> pb.Document:
        row = await self.store.get(principal().tenant_id, document_id_of(request.name))
        if row is None:
            raise _not_found(request.name)
        return document_from_row(row, with_content=request.view != pb.DOCUMENT_VIEW_BASIC)

    async def BatchGetDocuments(
        self, request: pb.BatchGetDocumentsRequest, context: Any
    ) -> pb.BatchGetDocumentsResponse:
        ids = [document_id_of(name, f"names[{i}]") for i, name in enumerate(request.names)]
        found = await self.store.get_many(principal().tenant_id, ids)
        with_content = request.view != pb.DOCUMENT_VIEW_BASIC
        response = pb.BatchGetDocumentsResponse()
        for name, document_id in zip(request.names, ids, strict=True):
            row = found.get(document_id)
            if row is None:
                response.missing_names.append(name)
            else:
                response.documents.append(document_from_row(row, with_content))
        return response

    async def ListDocuments(
        self, request: pb.ListDocumentsRequest, context: Any
    ) -> pb.ListDocumentsResponse:
        tenant = principal().tenant_id
        ordering = documents.parse_order_by(request.order_by)
        full = request.view == pb.DOCUMENT_VIEW_FULL
        filter_sql, filter_params = compile_filter(request.filter, FILTER_FIELDS)
        binding = {"filter": request.filter, "order_by": ordering.canonical, "full": full}
        after = (
            self.page_tokens.decode(request.page_token, tenant, binding)
            if request.page_token
            else None
        )
        page_size = clamp_page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        rows = await self.store.list_page(
            tenant, filter_sql, filter_params, ordering, after, page_size + 1, full
        )
        response = pb.ListDocumentsResponse(
            documents=[document_from_row(row, with_content=full) for row in rows[:page_size]]
        )
        if len(rows) > page_size:
            last = rows[page_size - 1]
            key = last["id"] if ordering.key == "name" else last[ordering.key].isoformat()
            response.next_page_token = self.page_tokens.encode(
                tenant, binding, {"k": key, "i": last["id"]}
            )
        return response

    # -- update and delete -------------------------------------------------------

    async def UpdateDocument(self, request: pb.UpdateDocumentRequest, context: Any) -> pb.Document:
        document = request.document
        document_id = document_id_of(document.name, "document.name")
        fields = documents.update_fields(request.update_mask.paths, document)
        if "content" in fields:
            documents.check_content(document.content, self.max_document_bytes)
        values = NewDocument(
            title=document.title,
            content=document.content,
            mime_type=document.mime_type or DEFAULT_MIME_TYPE,
            labels=dict(document.labels),
            metadata=json_format.MessageToDict(document.metadata),
            source_uri=document.source_uri,
        )
        row, current_etag = await self.store.update(
            principal().tenant_id, document_id, document.etag, fields, values
        )
        if row is None:
            if current_etag is None:
                raise _not_found(document.name)
            raise _etag_mismatch(document.name, document.etag, current_etag)
        return document_from_row(row)

    async def DeleteDocument(
        self, request: pb.DeleteDocumentRequest, context: Any
    ) -> pb.DeleteDocumentResponse:
        sequence, current_etag = await self.store.delete(
            principal().tenant_id, document_id_of(request.name), request.etag
        )
        if sequence is None:
            if current_etag is None:
                raise _not_found(request.name)
            raise _etag_mismatch(request.name, request.etag, current_etag)
        return pb.DeleteDocumentResponse(sequence=sequence)

    # -- change feed -------------------------------------------------------------

    async def WatchChanges(
        self, request: pb.WatchChangesRequest, context: Any
    ) -> AsyncIterator[pb.WatchChangesResponse]:
        caller = principal()
        if request.all_tenants and WATCH_ALL_SCOPE not in caller.scopes:
            raise PermissionDenied(
                f"all_tenants needs the {WATCH_ALL_SCOPE} scope",
                reason="MISSING_SCOPE",
                metadata={"missing": WATCH_ALL_SCOPE},
            )
        tenant = None if request.all_tenants else caller.tenant_id
        async for message in watch(
            self.store,
            self.hub,
            tenant,
            request.after_sequence,
            request.omit_content,
            self.watch_options,
        ):
            yield message


def _not_found(name: str) -> NotFound:
    return NotFound(f"{name} not found", reason="DOCUMENT_NOT_FOUND", metadata={"name": name})


def _etag_mismatch(name: str, sent: str, current: str) -> Aborted:
    return Aborted(
        f"{name} changed since etag {sent!r} was read; read it again and retry",
        reason="ETAG_MISMATCH",
        metadata={"name": name, "etag": current},
    )

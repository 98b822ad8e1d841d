"""`ingest` {documents: [{content, title?, labels?, document_id?, mime_type?}]}:
bulk create through DocumentService.BatchCreateDocuments, as the submitter,
with progress events. Items carry request ids derived from the task, so a
retried attempt replays instead of duplicating."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.task.v1 import task_service_pb2 as pb
from services.task.convert import struct
from services.task.execution import PermanentFailure, TaskContext

MAX_DOCUMENTS = 1000


class Ingest:
    type = "ingest"
    timeout_seconds = 900.0
    max_attempts = 3
    scopes = frozenset({"documents:write"})

    def validate(self, input: Mapping[str, Any]) -> list[str]:
        documents = input.get("documents")
        if not isinstance(documents, list) or not 1 <= len(documents) <= MAX_DOCUMENTS:
            return [f"documents must be a list of 1 to {MAX_DOCUMENTS} documents"]
        problems = []
        for i, document in enumerate(documents):
            if not isinstance(document, Mapping) or not isinstance(document.get("content"), str):
                problems.append(f"documents[{i}].content is required")
        return problems

    async def run(self, ctx: TaskContext) -> str:
        documents: list[Mapping[str, Any]] = ctx.input["documents"]
        total = len(documents)
        step = max(1, total // 10)
        task_key = ctx.name.removeprefix("tasks/")

        async def items() -> AsyncIterator[doc_pb.BatchCreateDocumentsRequest]:
            for i, item in enumerate(documents):
                if i % step == 0:
                    await ctx.progress("ingest", 90 * i // total)
                document = doc_pb.Document(
                    title=str(item.get("title", "")),
                    content=str(item["content"]),
                    mime_type=str(item.get("mime_type", "")),
                )
                document.labels.update(
                    {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
                )
                yield doc_pb.BatchCreateDocumentsRequest(
                    document=document,
                    document_id=str(item.get("document_id", "")),
                    request_id=f"task-{task_key}-{i}",
                )

        down = ctx.downstream
        try:
            response = await ctx.call(
                down.documents.BatchCreateDocuments(
                    items(), metadata=down.metadata(), timeout=max(down.timeout_seconds, 300.0)
                )
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT):
                raise PermanentFailure(
                    f"ingest failed: {exc.details()}", exc.code().value[0]
                ) from exc
            raise
        summary = {
            "created": response.created_count,
            "replayed": response.replayed_count,
            "failed": response.failed_count,
            "documents": [r.name for r in response.results if r.name],
            "errors": [
                {"index": r.index, "message": r.error.message}
                for r in response.results
                if r.error.code
            ],
        }
        artifact = pb.Artifact(artifact_id="ingest", name="ingest", description="Ingest summary")
        artifact.parts.add(data=struct(summary), media_type="application/json")
        await ctx.put_artifact(artifact)
        return (
            f"{response.created_count} created, {response.replayed_count} replayed, "
            f"{response.failed_count} failed"
        )

"""How to serve DocumentService: its descriptor, servicer registration and factory."""

from __future__ import annotations

from protomesh.document.v1 import document_service_pb2, document_service_pb2_grpc
from services.document.documents import MAX_BATCH_ITEMS
from services.document.feed import WatchOptions, change_hub
from services.document.servicer import DocumentServicer
from services.document.store import DocumentStore
from services.platform.pagination import PageTokens, page_token_secret
from services.platform.server import Runtime, ServiceParts, ServiceSpec, direct_dsn


def make_spec(
    watch_options: WatchOptions | None = None, max_batch_items: int = MAX_BATCH_ITEMS
) -> ServiceSpec:
    """DocumentService with its tunables (tests shorten the heartbeat interval)."""
    options = watch_options or WatchOptions()

    async def build(runtime: Runtime) -> ServiceParts:
        hub = change_hub(direct_dsn(runtime.settings))
        servicer = DocumentServicer(
            DocumentStore(runtime.pool),
            hub,
            PageTokens(page_token_secret(runtime.settings)),
            runtime.settings.max_document_bytes,
            options,
            max_batch_items,
        )
        return ServiceParts(servicer=servicer, background=[hub.run])

    return ServiceSpec(
        name="document",
        descriptor=document_service_pb2.DESCRIPTOR.services_by_name["DocumentService"],
        add_to_server=document_service_pb2_grpc.add_DocumentServiceServicer_to_server,
        build=build,
    )


SPEC = make_spec()

"""The services a task calls, as its submitter: search, documents and cost.

Each attempt gets a `Downstream` whose calls carry a token for the task's tenant
and submitter (`ServiceIdentity.token_for`, the workflow's scopes the submitter
holds plus the platform's grants), the submitter's trace and a request id that
names the task and its lease epoch.
"""

from __future__ import annotations

import math
import time
from typing import Any

from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from protomesh.document.v1 import document_service_pb2 as doc_pb
from protomesh.document.v1 import document_service_pb2_grpc as document_grpc
from protomesh.search.v1 import search_service_pb2 as search_pb
from protomesh.search.v1 import search_service_pb2_grpc as search_grpc
from services.platform import telemetry
from services.platform.clients import ServiceClients
from services.platform.identity import DELEGATED_TOKEN_TTL_SECONDS, ServiceIdentity
from services.platform.interceptors import REQUEST_ID_HEADER
from services.task.execution import Downstream, Metadata
from services.task.store import Lease, Row

# Scopes the platform grants a task's downstream calls whatever the submitter
# holds: metering is done on the user's behalf, not a privilege of theirs.
PLATFORM_GRANTED_SCOPES = frozenset({"cost:write"})


class DownstreamFactory:
    """Stubs to search, documents and cost whose calls carry a token for the task's
    tenant and submitter (ServiceIdentity.token_for), its trace and a request id."""

    def __init__(self, clients: ServiceClients, identity: ServiceIdentity) -> None:
        self.clients = clients
        self.identity = identity
        self.search = clients.stub(
            "search",
            search_pb.DESCRIPTOR.services_by_name["SearchService"],
            search_grpc.SearchServiceStub,
        )
        self.documents = clients.stub(
            "document",
            doc_pb.DESCRIPTOR.services_by_name["DocumentService"],
            document_grpc.DocumentServiceStub,
        )
        self.cost = clients.stub(
            "cost", cost_pb.DESCRIPTOR.services_by_name["CostService"], cost_grpc.CostServiceStub
        )

    def for_task(self, row: Row, lease: Lease, needed: frozenset[str]) -> Downstream:
        held = set(str(row["submitter_scopes"]).split()) | PLATFORM_GRANTED_SCOPES
        scopes = " ".join(sorted(needed & held))
        tenant, user = str(row["tenant_id"]), str(row["submitter"])
        static: list[tuple[str, str]] = [(REQUEST_ID_HEADER, f"task-{lease.task_id}-{lease.epoch}")]
        if row["traceparent"] and not telemetry.is_configured():
            # Untraced, pass the submitter's trace on; traced, the task runs in a span
            # whose context the client interceptor propagates itself.
            static.append(("traceparent", str(row["traceparent"])))
        # Minted on first use: "never" is -inf, not 0.0, because the monotonic clock
        # starts near zero on a freshly booted machine.
        minted: dict[str, Any] = {"token": "", "at": -math.inf}

        def metadata() -> Metadata:
            if time.monotonic() - minted["at"] > DELEGATED_TOKEN_TTL_SECONDS / 2:
                minted["token"] = self.identity.token_for(tenant, user, scopes)
                minted["at"] = time.monotonic()
            return (("authorization", f"Bearer {minted['token']}"), *static)

        return Downstream(self.search, self.documents, self.cost, metadata)

"""The worker's delegated token is minted on the first call, whatever the clock says."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from services.platform.clients import ServiceClients
from services.platform.config import Settings
from services.platform.identity import ServiceIdentity
from services.task import downstream as task_downstream
from services.task.store import Lease


class CountingIdentity(ServiceIdentity):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "task")
        self.minted: list[tuple[str, str, str]] = []

    def token_for(self, tenant: str, user: str, scopes: str) -> str:
        self.minted.append((tenant, user, scopes))
        return f"token-{len(self.minted)}"


@pytest.mark.parametrize("uptime", [3.0, 1e6])
async def test_first_call_carries_a_token_even_just_after_boot(
    uptime: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = {"t": uptime}
    monkeypatch.setattr(task_downstream.time, "monotonic", lambda: now["t"])
    settings = Settings(data_dir=tmp_path)
    identity = CountingIdentity(settings)
    clients = ServiceClients(settings, identity)
    try:
        factory = task_downstream.DownstreamFactory(clients, identity)
        row: dict[str, Any] = {
            "submitter_scopes": "search:read tasks:write",
            "tenant_id": "t-1",
            "submitter": "alice",
            "traceparent": None,
        }
        lease = Lease(task_id=uuid.uuid4(), tenant_id="t-1", owner="w", epoch=1)
        downstream = factory.for_task(row, lease, frozenset({"search:read"}))  # type: ignore[arg-type]

        assert dict(downstream.metadata())["authorization"] == "Bearer token-1"
        assert dict(downstream.metadata())["authorization"] == "Bearer token-1"  # cached
        assert identity.minted == [("t-1", "alice", "search:read")]

        now["t"] += task_downstream.DELEGATED_TOKEN_TTL_SECONDS  # half its life is long gone
        assert dict(downstream.metadata())["authorization"] == "Bearer token-2"
    finally:
        await clients.close()

"""The whole system as `protomesh up` runs it — embedded
PostgreSQL, every service, the task workers and the gateway as separate
processes — started once per session on free 127.0.0.1 ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from cli.launcher import System, free_ports, start_system
from services.platform.config import Settings
from services.platform.identity import KEY_FILE, load_key, mint_token
from tests.conftest import ALL_SCOPES

PORT_VARIABLES = (
    "PROTOMESH_DOCUMENT_PORT",
    "PROTOMESH_SEARCH_PORT",
    "PROTOMESH_TASK_PORT",
    "PROTOMESH_COST_PORT",
    "PROTOMESH_GATEWAY_PORT",
)


@dataclass
class Cluster:
    """A running protomesh and ways to call it."""

    settings: Settings
    system: System

    def token(self, tenant: str, user: str = "alice", scopes: str = ALL_SCOPES) -> str:
        return mint_token(
            load_key(self.settings.data_dir / KEY_FILE),
            tenant=tenant,
            user=user,
            scopes=scopes,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
        )

    def channel(self, service: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.settings.address_of(service))

    @property
    def gateway(self) -> str:
        return self.settings.gateway_url

    def has(self, component: str) -> bool:
        return any(child.name == component for child in self.system.children)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = Path(tmp_path_factory.mktemp("e2e"))
    ports = free_ports(len(PORT_VARIABLES) + 5)
    environ = {name: str(port) for name, port in zip(PORT_VARIABLES, ports, strict=False)}
    environ["PROTOMESH_METRICS_PORT_BASE"] = str(ports[-5])
    environ["PROTOMESH_DATA_DIR"] = str(data_dir)
    environ["PROTOMESH_LOG_LEVEL"] = os.environ.get("PROTOMESH_TEST_LOG_LEVEL", "warning")
    settings = Settings.from_env(environ)
    system = start_system(settings, workers=4)
    try:
        yield Cluster(settings, system)
    finally:
        system.stop()

"""`protomesh up --tls` with `PROTOMESH_TLS_CLIENT_AUTH=require`: every process it
runs (the four services, a task worker, the gateway) speaks only mutual TLS with
certificates from the dev CA it made in the data dir; a client with the settings
`up` prints for another shell reaches all of it, a plaintext one nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.launcher import free_ports, start_system, with_dev_tls
from cli.status import collect
from services.platform.config import EmbedderSettings, Settings, TlsSettings
from services.platform.identity import KEY_FILE, load_key, mint_token
from services.platform.tls import https_verification
from tests.conftest import ALL_SCOPES, eventually
from tests.integration.search.conftest import fresh_database


@dataclasses.dataclass
class Running:
    system: Settings  # what the processes run with
    client: Settings  # what `up --tls` tells another shell to export

    def token(self, tenant: str) -> str:
        return mint_token(
            load_key(self.system.data_dir / KEY_FILE),
            tenant=tenant,
            user="alice",
            scopes=ALL_SCOPES,
            issuer=self.system.jwt_issuer,
            audience=self.system.jwt_audience,
        )


@pytest.fixture(scope="module")
def up_with_tls(tmp_path_factory: pytest.TempPathFactory, migrated: str) -> Iterator[Running]:
    database = asyncio.run(fresh_database(migrated, "tls_up"))
    ports = free_ports(6)
    base = Settings(
        data_dir=Path(tmp_path_factory.mktemp("tlsup")),
        database_url=database,
        document_port=ports[0],
        search_port=ports[1],
        task_port=ports[2],
        cost_port=ports[3],
        gateway=dataclasses.replace(Settings().gateway, port=ports[4]),
        metrics_port_base=ports[5],
        embedder=EmbedderSettings(kind="hashing"),
        tls=TlsSettings(client_auth="require"),
        log_level=os.environ.get("PROTOMESH_TEST_LOG_LEVEL", "warning"),
    )
    settings, files = with_dev_tls(base)
    system = start_system(settings, workers=1)  # returns once every process is healthy
    client = TlsSettings(cert=str(files.client), key=str(files.client_key), ca=str(files.ca))
    try:
        yield Running(settings, dataclasses.replace(base, tls=client))
    finally:
        system.stop()


async def test_a_client_with_the_printed_settings_sees_everything_serving(
    up_with_tls: Running,
) -> None:
    status = await collect(up_with_tls.client, up_with_tls.token("tls-status"))
    assert status.healthy, status
    assert [c.name for c in status.components] == ["document", "search", "task", "cost", "gateway"]
    assert status.components[-1].endpoint.startswith("https://")
    assert status.index_lag is not None, status.problems
    assert status.spend_today, status.problems


async def test_a_question_travels_every_hop_over_mutual_tls(up_with_tls: Running) -> None:
    """HTTPS → gateway → documents and tasks; the task worker → search, documents
    and cost; search's indexer → documents: all mutual TLS."""
    client = up_with_tls.client
    headers = {"authorization": f"Bearer {up_with_tls.token('tls-ask')}"}
    verify = https_verification(client.tls)
    async with httpx.AsyncClient(
        base_url=client.gateway_url, verify=verify, headers=headers, timeout=30
    ) as http:
        created = await http.post(
            "/v1/documents", json={"title": "Parking", "content": "Visitors park behind the mill."}
        )
        assert created.status_code == 201, created.text
        found = await http.post(
            "/v1/search",
            json={"query": "visitors park", "min_sequence": created.json()["sequence"]},
        )
        assert [r["documentName"] for r in found.json()["results"]] == [created.json()["name"]]
        task = await http.post(
            "/v1/tasks",
            json={"type": "rag.answer", "input": {"question": "Where do visitors park?"}},
        )
        assert task.status_code == 202, task.text
        name = task.json()["name"]
        final: dict[str, str] = {}

        async def finished() -> bool:
            final.update((await http.get(f"/v1/{name}")).json()["status"])
            return final.get("state") not in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")

        await eventually(finished, within=60, every=0.2, what=f"{name} finished")
        assert final["state"] == "TASK_STATE_COMPLETED", final


async def test_a_plaintext_client_reaches_nothing(up_with_tls: Running) -> None:
    plaintext = dataclasses.replace(up_with_tls.client, tls=TlsSettings())
    status = await collect(plaintext, up_with_tls.token("tls-plain"))
    assert not any(component.healthy for component in status.components), status
    headers = {"authorization": f"Bearer {up_with_tls.token('tls-plain')}"}
    async with httpx.AsyncClient(base_url=plaintext.gateway_url, headers=headers) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get("/v1/documents")

"""A client nobody here wrote: openapi-python-client generates a Python package from
the running gateway's /openapi.json (offline, into a temporary directory), and
that package — imported as any user would — creates, gets, lists and searches
documents and submits and cancels a task, always with the names the API returned
(full names in path parameters, URL-encoded by the generated code).

Also against the real system: a JSON body sent the way `curl -d` sends it, a
stale If-Match (412), and authentication before the body's problems (401)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.cluster import Cluster

GENERATOR = Path(sys.prefix) / "openapi-client" / "bin" / "openapi-python-client"
PACKAGE = "protomesh_rest_client"
# Operations no generator can express in plain JSON: an NDJSON upload and a raw
# download of any media type. Everything else must come out.
UNSUPPORTED = ("POST /v1/documents:batchCreate", "GET /v1/spend:export")


@pytest.fixture(scope="module")
def generated(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    if not GENERATOR.exists():
        pytest.skip(f"openapi-python-client is not installed at {GENERATOR} (make setup)")
    folder = tmp_path_factory.mktemp("generated-client")
    spec = folder / "openapi.json"
    spec.write_bytes(httpx.get(f"{cluster.gateway}/openapi.json", timeout=10).content)
    config = folder / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter runs: nothing to fetch or install
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    skipped = [line for line in output.splitlines() if line.startswith("WARNING parsing")]
    assert len(skipped) == len(UNSUPPORTED), output
    assert all(any(op in line for op in UNSUPPORTED) for line in skipped), output
    assert "Unable to parse" not in output, output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture(scope="module")
def client(generated: ModuleType, cluster: Cluster) -> Any:
    token = cluster.token("genclient-" + uuid.uuid4().hex[:8])
    return generated.AuthenticatedClient(
        base_url=cluster.gateway, token=token, raise_on_unexpected_status=True, timeout=30
    )


def test_a_generated_client_works_with_the_names_the_api_returns(client: Any) -> None:
    models = _module("models")
    documents = "api.document_service.document_service_"
    create = _module(documents + "create_document")
    get = _module(documents + "get_document")
    listing = _module(documents + "list_documents")
    search = _module("api.search_service.search_service_search")

    created = create.sync(
        client=client,
        body=models.Document(title="Generated", content="Generated clients call the gateway."),
    )
    assert isinstance(created, models.Document), created
    assert created.name.startswith("documents/")
    # The full name goes into the path parameter (the generated code encodes it).
    fetched = get.sync(client=client, name=created.name)
    assert fetched.name == created.name
    assert fetched.title == "Generated"
    page = listing.sync(client=client, page_size=10)
    assert created.name in [document.name for document in page.documents]
    found = search.sync(
        client=client,
        body=models.SearchRequest(
            query="generated clients",
            mode=models.ProtomeshSearchV1SearchMode.SEARCH_MODE_KEYWORD,
            min_sequence=created.sequence,  # read your write: wait for the index
        ),
    )
    assert created.name in [result.document_name for result in found.results]

    tasks = "api.task_service.task_service_"
    submit = _module(tasks + "create_task")
    cancel = _module(tasks + "cancel_task")
    get_task = _module(tasks + "get_task")
    task = submit.sync(
        client=client,
        body=models.Task(type_="noop", input_=models.TaskInput.from_dict({"sleep_seconds": 60})),
    )
    assert isinstance(task, models.Task), task
    assert task.name.startswith("tasks/")
    # The body schema of :cancel has no `name`: the path carries it.
    canceled = cancel.sync(
        client=client, name=task.name, body=models.CancelTaskRequestBody(reason="not needed")
    )
    assert isinstance(canceled, models.Task), canceled
    assert canceled.name == task.name
    state = models.ProtomeshTaskV1TaskState.TASK_STATE_CANCELED
    deadline = time.monotonic() + 30
    while get_task.sync(client=client, name=task.name).status.state != state:
        assert time.monotonic() < deadline, "the task was not canceled within 30 s"
        time.sleep(0.2)


def test_a_stale_if_match_is_412_through_the_generated_client(client: Any) -> None:
    models = _module("models")
    create = _module("api.document_service.document_service_create_document")
    update = _module("api.document_service.document_service_update_document")
    document = create.sync(client=client, body=models.Document(title="v1", content="text"))
    answer = update.sync_detailed(
        client=client,
        name=document.name,
        body=models.Document(title="v2"),
        if_match='"stale"',
    )
    assert answer.status_code == 412, answer.content
    error = answer.parsed.error
    assert error.status == "ABORTED"
    updated = update.sync(
        client=client,
        name=document.name,
        body=models.Document(title="v2"),
        if_match=f'"{document.etag}"',
    )
    assert updated.title == "v2"


async def test_curl_style_json_and_authentication_first_on_the_real_system(
    cluster: Cluster,
) -> None:
    token = cluster.token("curl-" + uuid.uuid4().hex[:8])
    async with httpx.AsyncClient(base_url=cluster.gateway, timeout=30) as http:
        bearer = {"authorization": f"Bearer {token}"}
        # curl -d '{...}' sends application/x-www-form-urlencoded.
        created = await http.post(
            "/v1/documents",
            content=b'{"title": "curl", "content": "sent with curl -d"}',
            headers={**bearer, "content-type": "application/x-www-form-urlencoded"},
        )
        assert created.status_code == 201, created.text
        # A path and body that disagree: 401 without a good token, 400 with one.
        disagreeing = b'{"name": "tasks/someone-elses"}'
        url = "/v1/tasks/abc:cancel"
        for headers, reason in (
            ({}, "TOKEN_MISSING"),
            ({"authorization": "Bearer not-a-token"}, "TOKEN_MALFORMED"),
        ):
            refused = await http.post(url, content=disagreeing, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["error"]["details"][0]["reason"] == reason
        bad = await http.post(url, content=disagreeing, headers=bearer)
        assert bad.status_code == 400, bad.text

"""rag.answer end to end: fake SearchService and CostService on real gRPC
servers, real workers; citations verified; cost reserved, committed and
attributed; budgets pause or fail the task; the OpenAI-compatible generator
against a local fake provider."""

from __future__ import annotations

import uuid

import jwt
from google.protobuf import json_format

from protomesh.task.v1 import task_service_pb2 as pb
from services.task.openai_compat import OpenAICompatibleGenerator
from tests.integration.task.conftest import Chunk, Client, FakeCost, FakeSearch
from tests.integration.task.fake_openai import Script, fake_openai

CORPUS = [
    Chunk(
        "documents/rls",
        "rls-0",
        "Row-level security",
        "Row level security isolates tenants inside one PostgreSQL database. "
        "Each transaction sets the tenant id and policies admit only that tenant's rows. "
        "The application role has no BYPASSRLS attribute.",
        {"team": "db"},
    ),
    Chunk(
        "documents/rls-copy",
        "rls-copy-0",
        "Row-level security (copy)",
        "Row level security isolates tenants inside one PostgreSQL database. "
        "Each transaction sets the tenant id and policies admit only that tenant's rows. "
        "The application role has no BYPASSRLS attribute.",
    ),
    Chunk(
        "documents/queue",
        "queue-0",
        "Queues",
        "Workers claim tasks with FOR UPDATE SKIP LOCKED. Leases expire when a worker dies.",
    ),
]


def _tenant(fake_search: FakeSearch) -> str:
    tenant = f"r-{uuid.uuid4().hex[:8]}"
    fake_search.corpus[tenant] = CORPUS
    return tenant


def _parts(task: pb.Task) -> tuple[str, list[dict], dict]:
    (artifact,) = task.artifacts
    text = artifact.parts[0].text
    data = [json_format.MessageToDict(p.data) for p in artifact.parts[1:]]
    citations = [d for d in data if d.get("kind") == "citation"]
    (report,) = [d for d in data if d.get("kind") == "verification"]
    return text, citations, report


async def test_rag_answer_answers_with_verified_citations_and_metered_cost(
    client_for, workers, fake_search: FakeSearch, fake_cost: FakeCost
) -> None:
    tenant = _tenant(fake_search)
    client: Client = client_for(tenant, user="bob")
    task = await client.create(
        "rag.answer", {"question": "How does row level security isolate tenants?", "top_k": 3}
    )
    async with workers():
        done = await client.wait(task.name, pb.TASK_STATE_COMPLETED)
    done = await client.get(task.name, history_length=1000)
    text, citations, report = _parts(done)
    assert "[1]" in text
    assert report["verified"] is True, (text, report)
    assert report["supported"] == len(citations) >= 1
    by_chunk = {c.chunk_id: c for c in CORPUS}
    for citation in citations:
        assert citation["quote"] in by_chunk[citation["chunk_id"]].text
    # The duplicate chunk was deduped away.
    assert {c["document"] for c in citations} <= {"documents/rls", "documents/queue"}
    # Search ran as the submitter of this tenant.
    assert (tenant, "bob", "How does row level security isolate tenants?") in fake_search.calls
    # Cost: reserved before, committed after, attributed to the task and its user.
    reserves = [r for kind, t, r in fake_cost.calls if kind == "Reserve" and t == tenant]
    commits = [r for kind, t, r in fake_cost.calls if kind == "Commit" and t == tenant]
    assert len(reserves) == len(commits) == 1
    assert reserves[0].attribution.task == task.name
    assert reserves[0].attribution.user_id == "bob"
    assert reserves[0].estimate.model == "extractive-v2"
    costs = [e.cost for e in done.history if e.HasField("cost")]
    assert len(costs) == 1
    assert costs[0].amount_micros > 0
    assert costs[0].estimated is True
    assert done.cost_spent_micros == costs[0].amount_micros
    deltas = "".join(e.output_delta.text for e in done.history if e.HasField("output_delta"))
    assert deltas == text
    steps = [e.progress.step for e in done.history if e.HasField("progress")]
    assert steps == ["search", "rank", "generate", "verify"]


async def test_an_exhausted_budget_pauses_the_task_until_input(
    client_for, workers, fake_search: FakeSearch, fake_cost: FakeCost
) -> None:
    tenant = _tenant(fake_search)
    fake_cost.limit[tenant] = 1
    client = client_for(tenant)
    task = await client.create("rag.answer", {"question": "What do workers claim?"})
    async with workers():
        paused = await client.wait(task.name, pb.TASK_STATE_INPUT_REQUIRED)
        assert "budget exhausted" in paused.status.message
        fake_cost.limit[tenant] = 10**9
        await client.stub.SendTaskInput(
            pb.SendTaskInputRequest(name=task.name, input={"continue": True}), metadata=client.md
        )
        done = await client.wait(task.name, pb.TASK_STATE_COMPLETED)
    assert done.cost_spent_micros > 0


async def test_an_exhausted_budget_fails_the_task_when_asked_to(
    client_for, workers, fake_search: FakeSearch, fake_cost: FakeCost
) -> None:
    tenant = _tenant(fake_search)
    fake_cost.limit[tenant] = 1
    client = client_for(tenant)
    task = await client.create(
        "rag.answer", {"question": "What do workers claim?", "on_budget_exhausted": "fail"}
    )
    async with workers():
        failed = await client.wait(task.name, pb.TASK_STATE_FAILED)
    assert failed.error.code == 8  # RESOURCE_EXHAUSTED
    assert len(failed.attempts) == 1


async def test_the_task_cost_limit_is_enforced_before_the_call(
    client_for, workers, fake_search: FakeSearch, fake_cost: FakeCost
) -> None:
    tenant = _tenant(fake_search)
    client = client_for(tenant)
    task = await client.create(
        "rag.answer", {"question": "What do workers claim?"}, cost_limit_micros=5
    )
    async with workers():
        paused = await client.wait(task.name, pb.TASK_STATE_INPUT_REQUIRED)
    assert "task cost limit" in paused.status.message
    released = [r.name for kind, t, r in fake_cost.calls if kind == "Release" and t == tenant]
    assert len(released) == 1


async def test_rag_answer_with_an_openai_compatible_provider_flags_unsupported_citations(
    client_for, workers, fake_search: FakeSearch, fake_cost: FakeCost
) -> None:
    tenant = _tenant(fake_search)
    client = client_for(tenant)
    script = Script(
        answer=(
            "Row level security isolates tenants inside one PostgreSQL database [1]. "
            "The moon is made of green cheese [2]."
        ),
        usage=(321, 42),
    )
    async with fake_openai(script) as base_url:
        generator = OpenAICompatibleGenerator(base_url, "gpt-test", api_key="sk-test")
        task = await client.create(
            "rag.answer", {"question": "How does row level security isolate tenants?"}
        )
        async with workers(generator=generator):
            await client.wait(task.name, pb.TASK_STATE_COMPLETED)
    done = await client.get(task.name, history_length=1000)
    _, citations, report = _parts(done)
    assert report["verified"] is False
    assert report["supported"] == 1
    assert [u["claim"] for u in report["unsupported"]] == ["The moon is made of green cheese."]
    assert len(citations) == 1
    (cost,) = [e.cost for e in done.history if e.HasField("cost")]
    assert (cost.model, cost.input_tokens, cost.output_tokens, cost.estimated) == (
        "gpt-test",
        321,
        42,
        False,
    )
    assert cost.amount_micros == 321 + 2 * 42
    assert script.authorizations == ["Bearer sk-test"]
    assert script.requests[0]["stream"] is True


def test_delegated_tokens_act_as_the_submitter(settings) -> None:
    from services.platform.identity import ServiceIdentity

    token = ServiceIdentity(settings, "task").token_for("acme", "bob", "search:read cost:write")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tenant_id"] == "acme"
    assert claims["sub"] == "bob"
    assert claims["scope"] == "search:read cost:write"
    assert claims["act"] == {"sub": "service:task"}
    assert claims["exp"] - claims["iat"] <= 600


async def test_protomesh_ask_renders_the_answer_citations_and_cost(
    client_for, workers, fake_search: FakeSearch, task_channel, mint
) -> None:
    import io

    from rich.console import Console

    from cli import tasks as cli
    from services.platform.channels import Endpoint

    tenant = _tenant(fake_search)
    console = Console(file=io.StringIO(), width=200, record=True)
    target = Endpoint(task_channel._channel.target.decode())  # the running TaskService
    async with workers():
        view = await cli.ask(target, mint(tenant), "What do workers claim?", console)
        listed = await cli.list_tasks(target, mint(tenant), console)
    output = console.export_text()
    assert view.state == pb.TASK_STATE_COMPLETED
    assert "FOR UPDATE SKIP LOCKED" in view.answer
    assert "citations" in output
    assert "documents/queue" in output
    assert "cost" in output
    assert [t.name for t in listed] == [view.name]


async def test_research_waits_for_plan_confirmation_then_reports_per_sub_question(
    client_for, workers, fake_search: FakeSearch
) -> None:
    tenant = _tenant(fake_search)
    client = client_for(tenant)
    task = await client.create(
        "research", {"topic": "row level security", "depth": 1, "confirm_plan": True}
    )
    async with workers():
        paused = await client.wait(task.name, pb.TASK_STATE_INPUT_REQUIRED)
        assert "What is row level security?" in paused.status.message
        await client.stub.SendTaskInput(
            pb.SendTaskInputRequest(
                name=task.name,
                input={"sub_questions": ["How does row level security isolate tenants?"]},
            ),
            metadata=client.md,
        )
        done = await client.wait(task.name, pb.TASK_STATE_COMPLETED)
    done = await client.get(task.name, history_length=1000)
    text, citations, report = _parts(done)
    assert text.startswith("# Research: row level security")
    assert "## How does row level security isolate tenants?" in text
    assert citations
    assert report["verified"] is True
    steps = [e.progress.step for e in done.history if e.HasField("progress")]
    assert "search 1/1" in steps
    assert "synthesize 1/1" in steps


async def test_research_report_cites_in_every_section_and_lists_what_it_could_not_cover(
    client_for, workers, fake_search: FakeSearch
) -> None:
    tenant = _tenant(fake_search)
    client = client_for(tenant)
    task = await client.create(
        "research", {"topic": "row level security", "depth": 1, "confirm_plan": True}
    )
    async with workers():
        await client.wait(task.name, pb.TASK_STATE_INPUT_REQUIRED)
        await client.stub.SendTaskInput(
            pb.SendTaskInputRequest(
                name=task.name,
                input={
                    "sub_questions": [
                        "How does row level security isolate tenants?",
                        "Which sourdough starter rises fastest in a cold kitchen?",
                    ]
                },
            ),
            metadata=client.md,
        )
        done = await client.wait(task.name, pb.TASK_STATE_COMPLETED)
    text, citations, report = _parts(done)
    sections = text.split("\n## ")[1:]
    answered = [s for s in sections if not s.startswith("Not covered")]
    assert [s.splitlines()[0] for s in answered] == ["How does row level security isolate tenants?"]
    assert all("[1]" in s or "[2]" in s or "[3]" in s for s in answered)
    assert sections[-1].startswith("Not covered by the sources")
    assert "- Which sourdough starter rises fastest in a cold kitchen?" in sections[-1]
    assert citations
    assert report["verified"] is True
    assert "1 of 2 sub-questions" in done.status.message


async def test_research_folds_sub_questions_with_the_same_answer_into_one_section(
    client_for, workers, fake_search: FakeSearch
) -> None:
    tenant = _tenant(fake_search)
    client = client_for(tenant)
    asked = [
        "How does row level security isolate tenants?",
        "How does row level security isolate tenants in PostgreSQL?",
    ]
    task = await client.create(
        "research", {"topic": "row level security", "depth": 1, "confirm_plan": True}
    )
    async with workers():
        await client.wait(task.name, pb.TASK_STATE_INPUT_REQUIRED)
        await client.stub.SendTaskInput(
            pb.SendTaskInputRequest(name=task.name, input={"sub_questions": asked}),
            metadata=client.md,
        )
        done = await client.wait(task.name, pb.TASK_STATE_COMPLETED)
    text, _, report = _parts(done)
    assert text.count("\n## ") == 1, text
    assert f"## {asked[0]} / {asked[1]}" in text
    assert report["verified"] is True

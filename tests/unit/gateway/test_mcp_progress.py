"""MCP `ask` progress (only increasing, 100 at completion) and the protected-
resource metadata's authorization servers (URLs only), without a network."""

from __future__ import annotations

import pytest

from gateway.mcp import ProgressReporter
from gateway.mcp_http import is_issuer_url, resource_metadata
from protomesh.task.v1 import task_service_pb2 as pb


def status(state: int, percent: int = 0, step: str = "", message: str = "") -> pb.TaskStatus:
    return pb.TaskStatus(
        state=state, message=message, progress=pb.Progress(percent=percent, step=step)
    )


WORKING = pb.TASK_STATE_WORKING


async def reported(statuses: list[pb.TaskStatus]) -> list[tuple[float, float | None, str]]:
    sent: list[tuple[float, float | None, str]] = []

    async def progress(done: float, total: float | None, message: str) -> None:
        sent.append((done, total, message))

    reporter = ProgressReporter(progress)
    for item in statuses:
        await reporter.report(item)
    return sent


async def test_a_replayed_history_reports_each_percentage_once_and_completion_as_100() -> None:
    # What WatchTask from sequence 0 gives for a task already at 40 %: the snapshot,
    # then its history from the start, then the rest, then COMPLETED without a percentage.
    statuses = [
        status(WORKING, 40, "search"),
        status(pb.TASK_STATE_SUBMITTED),
        status(WORKING, 0, "plan"),
        status(WORKING, 10, "search"),
        status(WORKING, 30, "search"),
        status(WORKING, 40, "search"),
        status(WORKING, 90, "verify"),
        status(pb.TASK_STATE_COMPLETED, 0, "", "done"),
    ]

    sent = await reported(statuses)

    assert [done for done, _, _ in sent] == [40.0, 90.0, 100.0]
    assert {total for _, total, _ in sent} == {100.0}
    assert sent[-1][2] == "TASK_STATE_COMPLETED: done"


async def test_the_first_status_is_reported_even_at_zero() -> None:
    sent = await reported([status(pb.TASK_STATE_SUBMITTED), status(WORKING, 0, "plan")])

    assert sent == [(0.0, 100.0, "TASK_STATE_SUBMITTED")]


@pytest.mark.parametrize("state", [pb.TASK_STATE_FAILED, pb.TASK_STATE_CANCELED])
async def test_a_task_that_did_not_complete_does_not_report_100(state: int) -> None:
    sent = await reported([status(WORKING, 30, "search"), status(state, 0, "", "stopped")])

    assert [done for done, _, _ in sent] == [30.0]


async def test_a_percentage_over_100_is_capped() -> None:
    sent = await reported([status(WORKING, 250, "x"), status(pb.TASK_STATE_COMPLETED)])

    assert [done for done, _, _ in sent] == [100.0]


@pytest.mark.parametrize(
    ("issuer", "is_url"),
    [
        ("https://id.example.com/realms/protomesh", True),
        ("http://127.0.0.1:8081", True),
        ("protomesh-dev", False),
        ("", False),
        ("https://", False),
        ("ftp://id.example.com", False),
        ("https://id.example.com/?tenant=a", False),
        ("https://id.example.com/#x", False),
        ("/relative/issuer", False),
    ],
)
def test_only_absolute_http_urls_are_issuer_identifiers(issuer: str, is_url: bool) -> None:
    assert is_issuer_url(issuer) is is_url
    metadata = resource_metadata("http://gw/mcp", issuer)
    assert metadata["resource"] == "http://gw/mcp"
    assert metadata.get("authorization_servers") == ([issuer] if is_url else None)

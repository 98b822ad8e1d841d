"""Built-in workflows, one small module each, registered by task type.

A workflow declares its limits (timeout per attempt, attempts, the scopes its
downstream calls need), validates its input before the task is accepted (a
problem makes the task REJECTED), and runs against a `TaskContext`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from services.task.execution import TaskContext


class Workflow(Protocol):
    type: str
    timeout_seconds: float
    max_attempts: int
    scopes: frozenset[str]

    def validate(self, input: Mapping[str, Any]) -> list[str]:
        """Problems with the input; empty when it is acceptable."""

    async def run(self, ctx: TaskContext) -> str:
        """Does the work; returns the completion message."""


class Registry:
    """Task type → workflow."""

    def __init__(self, workflows: Iterable[Workflow] = ()) -> None:
        self._by_type: dict[str, Workflow] = {}
        for workflow in workflows:
            self.add(workflow)

    def add(self, workflow: Workflow) -> None:
        self._by_type[workflow.type] = workflow

    def get(self, type_: str) -> Workflow | None:
        return self._by_type.get(type_)

    def types(self) -> list[str]:
        return sorted(self._by_type)


def default_registry() -> Registry:
    from services.task.workflows.ingest import Ingest
    from services.task.workflows.noop import Noop
    from services.task.workflows.rag_answer import RagAnswer
    from services.task.workflows.research import Research

    return Registry([Noop(), RagAnswer(), Research(), Ingest()])

"""The closed sets of values CLI options take, as Enums: typer turns them into
`click.Choice`, so `--help` lists them, bad values are usage errors (exit 2) and
shell completion offers them. Kept free of gRPC and proto imports (this module
loads for `protomesh --help`); the command modules map them to proto enums."""

from __future__ import annotations

from enum import StrEnum


class OutputFormat(StrEnum):
    """`--output`: a Rich table for people, JSON for scripts (docs/cli.md)."""

    table = "table"
    json = "json"


class SearchMode(StrEnum):
    hybrid = "hybrid"
    keyword = "keyword"
    vector = "vector"


class GroupBy(StrEnum):
    """`cost report --by`."""

    model = "model"
    user = "user"
    api_key = "api-key"
    task = "task"
    day = "day"


class TaskState(StrEnum):
    """`tasks list --state`: TaskState without its TASK_STATE_ prefix, lower-case."""

    submitted = "submitted"
    working = "working"
    input_required = "input-required"
    auth_required = "auth-required"
    completed = "completed"
    failed = "failed"
    canceled = "canceled"
    rejected = "rejected"

    @property
    def proto_name(self) -> str:
        """The TaskState value's name in the API, e.g. TASK_STATE_INPUT_REQUIRED."""
        return "TASK_STATE_" + self.value.upper().replace("-", "_")

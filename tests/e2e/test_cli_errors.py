"""The CLI error sweep: EVERY `protomesh` command (enumerated from the typer app,
so a new command fails `test_every_command_is_in_the_sweep` until it is added
here) run against no server, with a bad token against the real system, with bad
arguments and with a bad setting, ends in one line on stderr (click's own usage
message for bad arguments) and its documented exit code, never a traceback.

Commands run in-process through typer's CliRunner (fast); the system is the
session's `cluster` (tests/cluster.py), started once for all e2e tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from cli.errors import ExitCode
from cli.launcher import free_ports
from cli.main import app
from tests.cluster import Cluster

MISSING_TASK = "tasks/00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Case:
    """How the sweep runs one command."""

    # A valid call that talks to the system; None for a command that is no client
    # of it (then `not_a_client` says why).
    call: tuple[str, ...] | None
    not_a_client: str = ""
    # Arguments click must refuse (exit 2), each a separate run.
    bad_arguments: tuple[tuple[str, ...], ...] = ()
    # A call that reads the PROTOMESH_* settings first (None: it reads none).
    reads_settings: tuple[str, ...] | None = None


CASES: dict[tuple[str, ...], Case] = {
    ("up",): Case(
        None,
        "starts the system itself (its bad setting and bad arguments are swept)",
        (("--workers", "many"), ("--replicas", "0"), ("--bogus",)),
        reads_settings=(),
    ),
    ("migrate",): Case(
        None,
        "a client of PostgreSQL, not of the services: see test_migrate_without_a_database",
        (("--bogus",),),
        reads_settings=(),
    ),
    ("token",): Case(
        None,
        "signs a token offline",
        ((), ("--tenant", "t", "--ttl", "soon")),
        reads_settings=("--tenant", "t"),
    ),
    ("ask",): Case(("What is the vacation policy?",), bad_arguments=((), ("q", "--top-k", "0"))),
    ("ingest",): Case(
        ("{file}",),
        bad_arguments=((), ("/nonexistent/path",), ("{file}", "--label", "nolabel")),
    ),
    ("search", "query"): Case(
        ("vacation",),
        bad_arguments=(
            ("x", "--mode", "psychic"),
            ("x", "--limit", "0"),
            ("x", "--label", "nolabel"),
            ("x", "--output", "xml"),
        ),
    ),
    ("search", "reindex"): Case(
        ("--no-wait",), bad_arguments=(("--wait-timeout", "-1"), ("--bogus",))
    ),
    ("cost", "report"): Case(
        (), bad_arguments=(("--by", "weather"), ("--from", "yesterday"), ("--to", "2026-13-01"))
    ),
    ("cost", "budgets"): Case((), bad_arguments=(("--bogus",),)),
    ("cost", "prices"): Case(("--history",), bad_arguments=(("--bogus",),)),
    ("tasks", "list"): Case((), bad_arguments=(("--state", "sleeping"), ("--page-size", "0"))),
    ("tasks", "show"): Case((MISSING_TASK,), bad_arguments=((), ("",))),
    ("tasks", "watch"): Case((MISSING_TASK,), bad_arguments=((), ("tasks/",))),
    ("tasks", "cancel"): Case((MISSING_TASK,), bad_arguments=((),)),
    ("tasks", "retry"): Case((MISSING_TASK,), bad_arguments=((),)),
    ("status",): Case((), bad_arguments=(("--output", "xml"),)),
    ("bench",): Case(
        None, "runs the bench/ scripts, which start their own systems", (("--only", "nosuch"),)
    ),
    ("mcp",): Case(
        None,
        "serves MCP on stdio; a failed call is an MCP tool error (tests/integration/agents)",
        (("--bogus",),),
        reads_settings=(),
    ),
    ("config",): Case(None, "prints settings offline", (("--output", "xml"),), reads_settings=()),
}
for _path, _case in CASES.items():
    if _case.call is not None and _case.reads_settings is None:
        CASES[_path] = Case(_case.call, _case.not_a_client, _case.bad_arguments, _case.call)


def leaf_commands() -> Iterator[tuple[str, ...]]:
    """Every runnable command of the app, as its words (`("tasks", "list")`)."""

    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        children = getattr(command, "commands", None)
        if children is None:
            yield path
            return
        for name, child in children.items():
            yield from walk(child, (*path, name))

    yield from walk(typer.main.get_command(app), ())


def clients() -> list[tuple[str, ...]]:
    return [path for path, case in CASES.items() if case.call is not None]


def fill(args: tuple[str, ...], file: Path) -> list[str]:
    return [str(file) if arg == "{file}" else arg for arg in args]


def invoke(path: tuple[str, ...], args: list[str], env: Mapping[str, str]) -> Result:
    """`protomesh PATH ARGS` in this process with only `env`'s PROTOMESH_* settings."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PROTOMESH_")}
    return CliRunner().invoke(app, [*path, *args], env={**cleared, **env})


def assert_one_line_failure(result: Result, code: ExitCode) -> str:
    """The run failed with `code`, one `error: ...` line on stderr, no traceback."""
    seen = f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, seen
    assert result.exception is None or isinstance(result.exception, SystemExit), seen
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, seen
    assert lines[0].startswith("error: "), seen
    assert result.exit_code == code, seen
    return lines[0]


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "handbook.md"
    path.write_text("# Vacation policy\n\nEmployees accrue twenty-five vacation days.\n")
    return path


@pytest.fixture(scope="module")
def no_server(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Settings whose every port is a 127.0.0.1 port nothing listens on."""
    closed = free_ports(6)
    return {
        "PROTOMESH_DATA_DIR": str(tmp_path_factory.mktemp("no-server")),
        "PROTOMESH_DOCUMENT_PORT": str(closed[0]),
        "PROTOMESH_SEARCH_PORT": str(closed[1]),
        "PROTOMESH_TASK_PORT": str(closed[2]),
        "PROTOMESH_COST_PORT": str(closed[3]),
        "PROTOMESH_GATEWAY_PORT": str(closed[4]),
        "PROTOMESH_METRICS_PORT_BASE": str(closed[5]),
    }


def test_every_command_is_in_the_sweep() -> None:
    assert set(leaf_commands()) == set(CASES), "add the new command to CASES"


@pytest.mark.parametrize("path", clients(), ids=" ".join)
def test_no_server_is_unreachable(
    path: tuple[str, ...], no_server: dict[str, str], document: Path
) -> None:
    case = CASES[path]
    assert case.call is not None

    result = invoke(path, fill(case.call, document), no_server)

    line = assert_one_line_failure(result, ExitCode.UNREACHABLE)
    assert "unreachable" in line or "nothing answers" in line, line


@pytest.mark.parametrize("path", clients(), ids=" ".join)
def test_a_bad_token_is_refused(path: tuple[str, ...], cluster: Cluster, document: Path) -> None:
    case = CASES[path]
    assert case.call is not None
    env = {**cluster.settings.to_env(), "PROTOMESH_TOKEN": "not-a-jwt"}

    result = invoke(path, fill(case.call, document), env)

    line = assert_one_line_failure(result, ExitCode.REFUSED)
    assert "UNAUTHENTICATED" in line, line


BAD_ARGUMENTS = [(path, bad) for path, case in CASES.items() for bad in case.bad_arguments]


@pytest.mark.parametrize(
    ("path", "bad"), BAD_ARGUMENTS, ids=[" ".join((*p, *b)) for p, b in BAD_ARGUMENTS]
)
def test_bad_arguments_are_usage_errors(
    path: tuple[str, ...], bad: tuple[str, ...], no_server: dict[str, str], document: Path
) -> None:
    result = invoke(path, fill(bad, document), no_server)

    seen = f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr, seen
    assert result.exit_code == ExitCode.USAGE, seen
    assert result.stderr.rstrip().splitlines()[-1].startswith("Error: "), seen


SETTINGS_READERS = [path for path, case in CASES.items() if case.reads_settings is not None]


@pytest.mark.parametrize("path", SETTINGS_READERS, ids=" ".join)
def test_a_bad_setting_is_a_configuration_error(
    path: tuple[str, ...], no_server: dict[str, str], document: Path
) -> None:
    case = CASES[path]
    assert case.reads_settings is not None
    env = {**no_server, "PROTOMESH_DOCUMENT_PORT": "abc"}

    result = invoke(path, fill(case.reads_settings, document), env)

    line = assert_one_line_failure(result, ExitCode.USAGE)
    assert line.startswith("error: configuration: "), line
    assert "PROTOMESH_DOCUMENT_PORT" in line, line


@pytest.mark.parametrize("action", ["show", "watch", "cancel", "retry"])
def test_a_missing_task_is_not_found(action: str, cluster: Cluster) -> None:
    result = invoke(("tasks", action), [MISSING_TASK], cluster.settings.to_env())

    line = assert_one_line_failure(result, ExitCode.NOT_FOUND)
    assert "NOT_FOUND" in line, line


def test_a_filter_the_service_rejects_is_exit_6(cluster: Cluster) -> None:
    result = invoke(("tasks", "list"), ["--filter", "state = = ="], cluster.settings.to_env())

    line = assert_one_line_failure(result, ExitCode.REJECTED)
    assert "INVALID_ARGUMENT" in line, line


def test_ingesting_nothing_ingestible_is_exit_6(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "slides.pdf").write_bytes(b"%PDF-1.7")

    result = invoke(("ingest",), [str(tmp_path), "--tenant", "sweep"], cluster.settings.to_env())

    line = assert_one_line_failure(result, ExitCode.REJECTED)
    assert "nothing to ingest: slides.pdf: unsupported type .pdf" in line, line


def test_migrate_without_a_database_is_unreachable(no_server: dict[str, str]) -> None:
    closed = free_ports(1)[0]
    env = {**no_server, "PROTOMESH_DATABASE_URL": f"postgresql://app@127.0.0.1:{closed}/pm"}

    result = invoke(("migrate",), [], env)

    assert_one_line_failure(result, ExitCode.UNREACHABLE)


def test_debug_shows_the_traceback(no_server: dict[str, str]) -> None:
    cleared = {k: None for k in os.environ if k.startswith("PROTOMESH_")}
    result = CliRunner().invoke(app, ["--debug", "tasks", "list"], env={**cleared, **no_server})

    assert result.exception is not None
    assert not isinstance(result.exception, SystemExit)
    assert result.stderr == ""


@pytest.mark.parametrize("command", [["tasks", "list"], ["ingest", "{file}"], ["status"]])
def test_as_a_process_no_server_is_one_line_too(
    command: list[str], no_server: dict[str, str], document: Path
) -> None:
    """The real process (the original report: a 76-line traceback, a CancelledError)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROTOMESH_")}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *fill(tuple(command), document)],
        env={**environ, **no_server},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == ExitCode.UNREACHABLE, done.stdout + done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr

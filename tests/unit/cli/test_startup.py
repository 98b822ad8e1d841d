"""`protomesh` starts light (no gRPC, stubs, services, Rich or drivers imported for
`--help` or completion), knows its version, documents its exit codes, completes
enum choices, and reports a bad configuration as one line with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from services.platform.config import environment_without_settings

HEAVY = (
    "grpc",
    "asyncpg",
    "numpy",
    "onnxruntime",
    "httpx",
    "rich.console",
    "google.protobuf",
    "protomesh",  # the generated stubs
    "services",
    "gateway",
    "cryptography",
    "mcp",
)


# The console script the package installs (what a shell completes).
PROTOMESH = str(Path(sys.executable).with_name("protomesh"))


def run(
    args: list[str], extra_env: dict[str, str] | None = None, program: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [program, *args],
        env=environment_without_settings(**(extra_env or {})),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_importing_the_cli_imports_nothing_heavy() -> None:
    probe = (
        "import json, sys; import cli.main; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )

    done = run(["-c", probe])

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_help_runs_without_importing_anything_heavy() -> None:
    probe = (
        "import json, sys\n"
        "from cli.main import app\n"
        "try:\n"
        "    app(['--help'], prog_name='protomesh')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )

    done = run(["-c", probe])

    assert done.returncode == 0, done.stderr
    assert "Exit codes:" in done.stdout
    assert done.stdout.splitlines()[-1] == "[]"


def test_version_is_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.stdout == f"protomesh {version('protomesh')}\n"


def test_help_documents_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["--help"])

    text = " ".join(result.stdout.split())
    assert result.exit_code == 0
    for code in ("2 usage", "3 server unreachable", "4 refused", "5 not found", "6 rejected"):
        assert code in text, text
    assert "--debug" in text


@pytest.mark.parametrize(
    ("words", "choices"),
    [
        ("protomesh search query x --mode ", ["hybrid", "keyword", "vector"]),
        ("protomesh search x --mode ", ["hybrid", "keyword", "vector"]),  # the default command
        ("protomesh cost report --by ", ["model", "user", "api-key", "task", "day"]),
        ("protomesh tasks list --state ", ["submitted", "working", "input-required"]),
        ("protomesh status --output ", ["table", "json"]),
    ],
)
def test_bash_completion_offers_the_choices(words: str, choices: list[str]) -> None:
    done = run(
        [],
        {
            "_PROTOMESH_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split())),
        },
        PROTOMESH,
    )

    assert done.returncode == 0, done.stderr
    offered = done.stdout.split()
    assert all(choice in offered for choice in choices), offered


def test_a_bad_setting_is_one_line_and_exit_2() -> None:
    done = run(["-m", "cli.main", "config"], {"PROTOMESH_DOCUMENT_PORT": "abc"})

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: configuration: ")
    assert "PROTOMESH_DOCUMENT_PORT" in lines[0]
    assert "abc" in lines[0]


def test_config_as_json_lists_every_setting_with_secrets_hidden() -> None:
    environ = {"PROTOMESH_DATA_DIR": "/srv/pm", "PROTOMESH_TOKEN": "secret-token"}

    result = CliRunner().invoke(app, ["config", "--output", "json"], env=environ)
    same = CliRunner().invoke(app, ["config", "--json"], env=environ)

    assert result.exit_code == 0, result.stderr
    assert same.stdout == result.stdout
    settings = {item["name"]: item for item in json.loads(result.stdout)["items"]}
    assert settings["PROTOMESH_DATA_DIR"]["value"] == "/srv/pm"
    assert set(settings["PROTOMESH_DATA_DIR"]) == {"name", "value", "default", "meaning"}
    assert settings["PROTOMESH_TOKEN"]["value"] == "(set, hidden)"
    assert "secret-token" not in result.stdout
    assert os.environ.get("PROTOMESH_TOKEN") != "secret-token"  # CliRunner restored it

"""The configuration tree: every `PROTOMESH_*` name the code mentions is in it,
nothing outside it reads the environment, and the README's table is generated."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from services.platform.config import (
    ConfigError,
    EmbedderSettings,
    Settings,
    markdown_table,
    variables,
)

ROOT = Path(__file__).resolve().parents[3]
CODE = ("services", "gateway", "cli", "bench", "tools")
NAME = re.compile(r"\bPROTOMESH_[A-Z0-9_]+")


def code_files() -> list[Path]:
    return sorted(
        path
        for top in CODE
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    )


def names_in_strings(path: Path) -> set[str]:
    """`PROTOMESH_*` names in the file's string literals and comments (prefixes
    ending in `_`, such as an f-string's `PROTOMESH_TASK_{…}`, are not names)."""
    found: set[str] = set()
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    for token in tokens:
        if token.type in (tokenize.STRING, tokenize.COMMENT):  # 3.11: f-strings are STRING
            found |= {n for n in NAME.findall(token.string) if not n.endswith("_")}
    return found


def test_every_protomesh_name_in_the_code_is_in_the_tree() -> None:
    known = {variable.name for variable in variables()}
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in code_files()
        for name in names_in_strings(path) - known
    }
    assert not unknown, f"not in services/platform/config.py: {sorted(unknown)}"


def environment_reads(path: Path) -> list[int]:
    """Lines that read `os.environ`/`os.getenv`, except `{**os.environ, …}`: handing
    the whole environment to a child process reads no setting."""
    tree = ast.parse(path.read_text(), str(path))
    passed_on = {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key, value in zip(node.keys, node.values, strict=True)
        if key is None
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
        and node.attr in ("environ", "getenv", "putenv", "unsetenv")
        and id(node) not in passed_on
    ]


def test_only_the_tree_reads_the_environment() -> None:
    config = ROOT / "services" / "platform" / "config.py"
    offenders = {
        str(path.relative_to(ROOT)): lines
        for path in code_files()
        if path != config and (lines := environment_reads(path))
    }
    assert not offenders, f"read the environment outside the settings tree: {offenders}"


def test_the_readme_table_is_generated_from_the_tree() -> None:
    readme = (ROOT / "README.md").read_text()
    begin, end = "<!-- settings:begin -->\n", "<!-- settings:end -->"
    table = readme[readme.index(begin) + len(begin) : readme.index(end)]
    assert table == markdown_table(), "run `protomesh config --markdown` into README.md"


def test_variable_names_are_unique_and_documented() -> None:
    names = [variable.name for variable in variables()]
    assert len(names) == len(set(names))
    assert all(variable.doc for variable in variables())


def test_sections_prefixes_and_explicit_names() -> None:
    settings = Settings.from_env(
        {
            "PROTOMESH_GATEWAY_PORT": "9090",
            "PROTOMESH_GATEWAY_CORS_ORIGINS": "https://a.example, https://b.example",
            "PROTOMESH_GATEWAY_BACKENDS": "pkg.A=h:1,pkg.B=h:2",
            "PROTOMESH_TASK_LEASE_SECONDS": "7.5",
            "PROTOMESH_TASK_CONCURRENCY": "3",
            "PROTOMESH_EMBEDDER": "hashing",
            "PROTOMESH_SEARCH_INDEXER": "off",
            "PROTOMESH_TOKEN": "t",
            "PROTOMESH_BENCH_CACHE": "~/corpora",
        }
    )
    assert settings.gateway.port == 9090
    assert settings.gateway.cors_origins == ("https://a.example", "https://b.example")
    assert settings.gateway.backends == {"pkg.A": "h:1", "pkg.B": "h:2"}
    assert settings.task_worker.lease_seconds == 7.5
    assert settings.task_worker.count == 3
    assert settings.embedder == EmbedderSettings(kind="hashing")
    assert settings.search_indexer is False
    assert settings.client.token == "t"
    assert settings.bench.cache == Path("~/corpora").expanduser()
    assert settings.gateway_url == "http://127.0.0.1:9090"


def test_empty_values_mean_the_default_and_overrides_win() -> None:
    settings = Settings.from_env({"PROTOMESH_DOCUMENT_PORT": ""}, data_dir=Path("/x"))
    assert settings.document_port == 50051
    assert settings.data_dir == Path("/x")


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        (
            "PROTOMESH_DOCUMENT_PORT",
            "abc",
            "PROTOMESH_DOCUMENT_PORT='abc': expected an integer port",
        ),
        ("PROTOMESH_DOCUMENT_PORT", "0", "PROTOMESH_DOCUMENT_PORT='0': expected an integer port"),
        ("PROTOMESH_HEALTH_PORT", "65536", "expected an integer port 1-65535, or 0 for none"),
        ("PROTOMESH_SEARCH_INDEXER", "maybe", "'maybe': expected on or off"),
        ("PROTOMESH_GATEWAY_BACKENDS", "pkg.A", "'pkg.A': expected comma-separated KEY=VALUE"),
        ("PROTOMESH_TASK_LEASE_SECONDS", "soon", "'soon': expected a number of seconds greater"),
        ("PROTOMESH_TASK_LEASE_SECONDS", "0", "'0': expected a number of seconds greater"),
        ("PROTOMESH_TASK_POLL_SECONDS", "nan", "'nan': expected a number of seconds"),
        ("PROTOMESH_TASK_CONCURRENCY", "0", "'0': expected an integer of at least 1"),
        ("PROTOMESH_GENERATOR_MAX_RETRIES", "-1", "'-1': expected an integer of at least 0"),
        ("PROTOMESH_EMBEDDER", "bert", "'bert': expected one of minilm, openai, hashing"),
        ("PROTOMESH_LOG_FORMAT", "xml", "'xml': expected one of json, console"),
        ("PROTOMESH_TLS_CLIENT_AUTH", "maybe", "'maybe': expected one of none, require"),
        ("PROTOMESH_TENANT_RATE_LIMITS", "read=fast", "expected comma-separated CLASS=PER_MINUTE"),
        ("PROTOMESH_EMBEDDER", "openai", "PROTOMESH_EMBEDDER=openai needs PROTOMESH_EMBEDDER_BASE"),
    ],
)
def test_a_bad_value_names_its_variable_and_the_expected_form(
    name: str, raw: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)) as caught:
        Settings.from_env({name: raw})
    assert len(caught.value.problems) == 1


def test_every_bad_value_is_reported_at_once() -> None:
    environ = {
        "PROTOMESH_DOCUMENT_PORT": "abc",
        "PROTOMESH_GATEWAY_PORT": "70000",
        "PROTOMESH_TASK_LEASE_SECONDS": "soon",
        "PROTOMESH_LOG_LEVEL": "loud",
        "PROTOMESH_DB_POOL_MIN": "20",
        "PROTOMESH_EMBEDDER_MAX_ATTEMPTS": "0",
        "PROTOMESH_SEARCH_PORT": "50999",  # a good one among them: not reported
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)
    problems = caught.value.problems
    assert problems == [
        "PROTOMESH_DB_POOL_MIN=20 exceeds PROTOMESH_DB_POOL_MAX=10",
        "PROTOMESH_DOCUMENT_PORT='abc': expected an integer port 1-65535",
        "PROTOMESH_EMBEDDER_MAX_ATTEMPTS='0': expected an integer of at least 1",
        "PROTOMESH_GATEWAY_PORT='70000': expected an integer port 1-65535",
        "PROTOMESH_LOG_LEVEL='loud': expected one of debug, info, warning, error, critical",
        "PROTOMESH_TASK_LEASE_SECONDS='soon': expected a number of seconds greater than 0",
    ]
    assert str(caught.value) == "; ".join(problems)
    assert isinstance(caught.value, ValueError)  # callers that catch ValueError still do


def test_every_default_passes_its_own_check() -> None:
    Settings.from_env({v.name: v.default_text for v in variables()})


def test_secrets_are_never_shown() -> None:
    settings = Settings.from_env(
        {"PROTOMESH_GENERATOR_API_KEY": "sk-1", "PROTOMESH_DATABASE_URL": "postgres://u:p@h/d"}
    )
    shown = {v.name: v.value_text(settings) for v in variables()}
    assert shown["PROTOMESH_GENERATOR_API_KEY"] == "(set, hidden)"
    assert shown["PROTOMESH_DATABASE_URL"] == "(set, hidden)"
    assert shown["PROTOMESH_TOKEN"] == ""
    assert shown["PROTOMESH_GATEWAY_PORT"] == "8080"


def test_the_checks_see_violations(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\n"
        "x = os.environ.get('PROTOMESH_NOPE', '')\n"
        "env = {**os.environ, 'A': '1'}\n"
        "# PROTOMESH_IN_A_COMMENT\n"
        "f = f'PROTOMESH_TASK_{x}'\n"
    )
    assert environment_reads(probe) == [2]
    assert names_in_strings(probe) == {"PROTOMESH_NOPE", "PROTOMESH_IN_A_COMMENT"}


def test_to_env_rebuilds_the_same_settings() -> None:
    settings = Settings.from_env(
        {
            "PROTOMESH_DATA_DIR": "/srv/pm",
            "PROTOMESH_GATEWAY_BACKENDS": "pkg.A=h:1",
            "PROTOMESH_GATEWAY_CORS_ORIGINS": "https://a.example",
            "PROTOMESH_SEARCH_INDEXER": "off",
            "PROTOMESH_TASK_LEASE_SECONDS": "7.5",
            "PROTOMESH_GENERATOR_API_KEY": "sk-1",
        }
    )
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings().to_env() == {}


def test_a_child_gets_exactly_these_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTOMESH_REPLICAS", "2")
    monkeypatch.setenv("PATH_FOR_THE_CHILD", "kept")
    settings = Settings.from_env({"PROTOMESH_GATEWAY_PORT": "9090"})
    environment = settings.child_environment()
    assert "PROTOMESH_REPLICAS" not in environment  # settings say 1, the default
    assert environment["PROTOMESH_GATEWAY_PORT"] == "9090"
    assert environment["PATH_FOR_THE_CHILD"] == "kept"

"""`protomesh search` is a group with a default command: a first argument that
names no subcommand (query text, or an option) goes to `query`, so both
`protomesh search reindex` and `protomesh search "some text"` work."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli.default_group import DefaultCommandGroup
from cli.main import app as protomesh


class _Group(DefaultCommandGroup):
    default_command = "query"


toy = typer.Typer(cls=_Group, no_args_is_help=True)


@toy.command("query")
def _query(text: str, mode: str = "hybrid") -> None:
    """Search."""
    print(f"query {text!r} mode={mode}")


@toy.command("reindex")
def _reindex(tenant: str = "default") -> None:
    """Rebuild."""
    print(f"reindex tenant={tenant}")


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["reindex", "--tenant", "acme"], "reindex tenant=acme"),
        (["reindex"], "reindex tenant=default"),
        (["tenant isolation", "--mode", "keyword"], "query 'tenant isolation' mode=keyword"),
        (["--mode", "vector", "options first"], "query 'options first' mode=vector"),
        (["query", "reindex"], "query 'reindex' mode=hybrid"),  # text equal to a subcommand
        (["reindexing"], "query 'reindexing' mode=hybrid"),  # no prefix matching
    ],
)
def test_a_subcommand_runs_and_anything_else_goes_to_the_default(
    args: list[str], expected: str
) -> None:
    result = runner.invoke(toy, args)

    assert result.exit_code == 0, result.output
    assert result.output.strip() == expected


def test_help_and_no_arguments_still_belong_to_the_group() -> None:
    helped = runner.invoke(toy, ["--help"])
    bare = runner.invoke(toy, [])

    assert helped.exit_code == 0, helped.output
    for output in (helped.output, bare.output):
        assert "query" in output, output
        assert "reindex" in output, output


def test_protomesh_search_lists_query_and_reindex() -> None:
    result = runner.invoke(protomesh, ["search", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "query" in result.output, result.output
    assert "reindex" in result.output, result.output
    assert 'protomesh search "some text"' in result.output


def test_protomesh_search_text_reaches_the_query_command(tmp_path: Path) -> None:
    # The bad mode is rejected before any RPC: this shows the text and options
    # (given in either order) got to `query`, not that a server answered.
    for args in (["x", "--mode", "psychic"], ["--mode", "psychic", "x"]):
        result = runner.invoke(
            protomesh, ["search", *args, "--data-dir", str(tmp_path)], env={"COLUMNS": "200"}
        )

        assert result.exit_code == 2, result.output
        assert "hybrid" in result.output, result.output

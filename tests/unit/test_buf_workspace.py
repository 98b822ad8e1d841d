"""The Buf workspace works in a fresh clone: the google/api and google/rpc files
the contracts import are committed (third_party/proto), identical to the pinned
googleapis-common-protos release, and `buf build` needs no prior make step."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import google.api
import pytest

ROOT = Path(__file__).resolve().parents[2]
THIRD_PARTY = ROOT / "third_party" / "proto"
BUF = Path(sys.executable).parent / "buf"


def test_vendored_google_protos_are_the_installed_release_verbatim() -> None:
    installed = Path(next(iter(google.api.__path__))).parent
    vendored = sorted(THIRD_PARTY.rglob("*.proto"))

    assert vendored
    for path in vendored:
        relative = path.relative_to(THIRD_PARTY)
        assert path.read_bytes() == (installed.parent / relative).read_bytes(), relative


def test_every_google_import_of_the_contracts_is_vendored() -> None:
    imports = {
        line.split('"')[1]
        for path in [*(ROOT / "proto").rglob("*.proto"), *THIRD_PARTY.rglob("*.proto")]
        for line in path.read_text().splitlines()
        if line.startswith("import ") and '"google/' in line
    }
    missing = [
        name
        for name in imports
        if not name.startswith("google/protobuf/") and not (THIRD_PARTY / name).exists()
    ]

    assert not missing


@pytest.mark.skipif(not BUF.exists(), reason="buf (a dev dependency) is not installed")
def test_buf_build_and_lint_work_from_what_git_holds(tmp_path: Path) -> None:
    for name in ("proto", "third_party"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copy(ROOT / "buf.gen.yaml", tmp_path / "buf.gen.yaml")

    for command in (["build", "-o", "image.binpb"], ["lint"]):
        done = subprocess.run(
            [str(BUF), *command], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "image.binpb").stat().st_size > 0

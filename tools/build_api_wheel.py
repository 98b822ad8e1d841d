"""Build `protomesh-api`, the generated stubs alone, as a wheel.

    python tools/build_api_wheel.py OUT_DIR

Other services talk to protomesh through these modules (`protomesh.<service>.v1`
messages, gRPC stubs and type stubs, and the `buf.validate` options they import),
so the wheel holds `generated/` and nothing of the services, and depends only on
protobuf, grpcio and googleapis-common-protos. The project file is
packaging/protomesh-api/pyproject.toml.in, a template whose version is filled
in with protomesh's own.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging" / "protomesh-api"
PACKAGES = ("protomesh", "buf")  # under generated/


def version() -> str:
    found = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    if found is None:
        raise SystemExit("no version in pyproject.toml")
    return found.group(1)


def stage(into: Path) -> None:
    """The wheel's source tree: its pyproject (with protomesh's version), README,
    LICENSE and a copy of generated/'s packages under src/."""
    project = (PACKAGING / "pyproject.toml.in").read_text().replace("@VERSION@", version())
    (into / "pyproject.toml").write_text(project)
    shutil.copy(PACKAGING / "README.md", into / "README.md")
    shutil.copy(ROOT / "LICENSE", into / "LICENSE")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / "generated" / package,
            into / "src" / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )


def pip_wheel(source: Path, out: Path) -> None:
    """`pip wheel` of the project in `source` into `out`, with this interpreter's
    setuptools (no isolated build environment to download) and no dependencies."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
    )


def build(out: Path) -> Path:
    """Builds the wheel into `out` and returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="protomesh-api-") as scratch:
        stage(Path(scratch))
        pip_wheel(Path(scratch), out)
    return out / f"protomesh_api-{version()}-py3-none-any.whl"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(build(Path(sys.argv[1])))

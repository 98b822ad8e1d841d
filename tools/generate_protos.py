"""Regenerate `generated/` from `proto/`: Python messages, gRPC stubs, type stubs
and a descriptor set with source comments (the gateway's OpenAPI and MCP text).

The output is deterministic, so CI can regenerate and fail on any difference.
google/api and google/rpc come from the installed googleapis-common-protos
package and are not regenerated: their Python modules ship with that package.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import google.api
import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
GENERATED = ROOT / "generated"
DESCRIPTOR_SET = "protomesh_descriptor_set.binpb"


def include_paths() -> list[Path]:
    """proto/, googleapis-common-protos' site-packages root, protoc's own well-known types."""
    googleapis_root = Path(next(iter(google.api.__path__))).parent.parent
    wkt_root = Path(next(iter(grpc_tools.__path__))) / "_proto"
    return [PROTO, googleapis_root, wkt_root]


def proto_sources() -> list[str]:
    return sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))


def run_protoc(out: Path, sources: list[str]) -> None:
    plugin = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    args = [
        "grpc_tools.protoc",
        *(f"-I{p}" for p in include_paths()),
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        f"--mypy_grpc_out={out}",
        f"--descriptor_set_out={out / DESCRIPTOR_SET}",
        "--include_imports",
        "--include_source_info",
        *sources,
    ]
    from grpc_tools import protoc

    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def add_package_markers(out: Path) -> None:
    for directory in [d for d in out.rglob("*") if d.is_dir()]:
        (directory / "__init__.py").touch()
        (directory / "py.typed").touch()


def sync(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run_protoc(out, proto_sources())
        add_package_markers(out)
        sync(out, GENERATED)
    print(f"generated {sum(1 for _ in GENERATED.rglob('*.py'))} modules in {GENERATED}")


if __name__ == "__main__":
    main()

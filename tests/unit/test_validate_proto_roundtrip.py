"""The vendored buf/validate/validate.proto must compile to the wheel's descriptor.

``proto/buf/validate/validate.proto`` is reconstructed by
``tools/reconstruct_validate_proto.py`` from the FileDescriptorProto embedded in
protovalidate. Compiling it must give back that descriptor exactly (apart from
``source_code_info``), otherwise our generated code and protovalidate would
disagree about the rules.
"""

from __future__ import annotations

import difflib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2, text_format

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
VALIDATE_PROTO = "buf/validate/validate.proto"
TOOL_PATH = REPO_ROOT / "tools" / "reconstruct_validate_proto.py"


def _load_tool() -> ModuleType:
    """Import tools/reconstruct_validate_proto.py (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("reconstruct_validate_proto", TOOL_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def _grpc_tools_include() -> Path:
    spec = importlib.util.find_spec("grpc_tools")
    assert spec is not None
    assert spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "_proto"


def _compile_with_protoc(out: Path) -> descriptor_pb2.FileDescriptorProto:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--proto_path={_grpc_tools_include()}",
            f"--descriptor_set_out={out}",
            VALIDATE_PROTO,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (compiled,) = descriptor_set.file
    compiled.ClearField("source_code_info")
    return compiled


def _readable_diff(
    expected: descriptor_pb2.FileDescriptorProto, actual: descriptor_pb2.FileDescriptorProto
) -> str:
    lines = difflib.unified_diff(
        text_format.MessageToString(expected, print_unknown_fields=True).splitlines(),
        text_format.MessageToString(actual, print_unknown_fields=True).splitlines(),
        fromfile="wheel descriptor",
        tofile="compiled validate.proto",
        lineterm="",
    )
    return "\n".join(list(lines)[:200])


@pytest.fixture(scope="module")
def wheel_descriptor() -> descriptor_pb2.FileDescriptorProto:
    descriptor: descriptor_pb2.FileDescriptorProto = tool.load_wheel_descriptor()
    descriptor.ClearField("source_code_info")
    return descriptor


def test_vendored_validate_proto_compiles_to_the_wheel_descriptor(
    tmp_path: Path, wheel_descriptor: descriptor_pb2.FileDescriptorProto
) -> None:
    compiled = _compile_with_protoc(tmp_path / "validate.binpb")

    assert compiled == wheel_descriptor, _readable_diff(wheel_descriptor, compiled)
    assert compiled.SerializeToString(deterministic=True) == wheel_descriptor.SerializeToString(
        deterministic=True
    ), "descriptors are equal as messages but serialize differently"


def test_vendored_validate_proto_is_what_the_tool_generates(
    wheel_descriptor: descriptor_pb2.FileDescriptorProto,
) -> None:
    on_disk = (PROTO_ROOT / VALIDATE_PROTO).read_text(encoding="utf-8")

    assert on_disk == tool.reconstruct(wheel_descriptor), (
        "proto/buf/validate/validate.proto is stale: run tools/reconstruct_validate_proto.py"
    )


@pytest.mark.skipif(
    shutil.which("buf", path=str(Path(sys.executable).parent)) is None,
    reason="buf binary not installed",
)
def test_vendored_validate_proto_builds_with_buf(
    tmp_path: Path, wheel_descriptor: descriptor_pb2.FileDescriptorProto
) -> None:
    buf = shutil.which("buf", path=str(Path(sys.executable).parent))
    assert buf is not None
    module = tmp_path / "module"
    shutil.copytree(PROTO_ROOT / "buf", module / "buf")
    (module / "buf.yaml").write_text("version: v2\n", encoding="utf-8")
    image = tmp_path / "image.binpb"
    result = subprocess.run(
        [
            buf,
            "build",
            "--path",
            VALIDATE_PROTO,
            "--exclude-source-info",
            "--as-file-descriptor-set",
            "-o",
            str(image),
        ],
        cwd=module,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    images = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())
    (built,) = [f for f in images.file if f.name == VALIDATE_PROTO]

    assert built == wheel_descriptor, _readable_diff(wheel_descriptor, built)

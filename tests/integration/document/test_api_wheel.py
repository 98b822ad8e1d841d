"""The protomesh-api wheel (generated stubs alone) installs into a clean virtual
environment with only its declared dependencies, and a client there creates and
reads a document on a real DocumentService; nothing of the services comes with it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import grpc
import pytest

from services.platform.server import ServiceServer
from tests.conftest import Mint
from tools.build_api_wheel import build

ROOT = Path(__file__).resolve().parents[3]
UV = Path(sys.executable).parent / "uv"

CLIENT = """
import sys
import grpc
from protomesh.document.v1 import document_service_pb2 as pb
from protomesh.document.v1 import document_service_pb2_grpc as pb_grpc

address, token = sys.argv[1], sys.argv[2]
auth = [("authorization", "Bearer " + token)]
with grpc.insecure_channel(address) as channel:
    stub = pb_grpc.DocumentServiceStub(channel)
    made = stub.CreateDocument(
        pb.CreateDocumentRequest(document=pb.Document(title="from the wheel", content="hi")),
        metadata=auth,
    )
    got = stub.GetDocument(pb.GetDocumentRequest(name=made.name), metadata=auth)
    print(got.name, got.title, sep="|")
try:
    import services  # noqa: F401
except ImportError:
    print("no services")
"""


@pytest.mark.skipif(not UV.exists(), reason="uv (installed by `make setup`) is not in the venv")
async def test_the_stubs_wheel_calls_a_running_server_from_a_clean_venv(
    document_server: tuple[ServiceServer, grpc.aio.Channel], mint: Mint, tmp_path: Path
) -> None:
    wheel = await asyncio.to_thread(build, tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert "protomesh/document/v1/document_service_pb2_grpc.py" in names
    assert "protomesh/document/v1/document_service_pb2.pyi" in names
    assert not [n for n in names if n.startswith(("services/", "gateway/", "cli/"))]

    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    freeze = await asyncio.to_thread(_install, venv, wheel)
    installed = {line.split("==")[0].lower() for line in freeze.split()}
    assert {"protomesh-api", "protobuf", "grpcio", "googleapis-common-protos"} <= installed
    assert not installed & {"protomesh", "asyncpg", "starlette", "onnxruntime", "uvicorn"}

    server, _ = document_server
    client = await asyncio.create_subprocess_exec(
        str(python),
        "-I",  # isolated: the repository is not on sys.path
        "-c",
        CLIENT,
        f"127.0.0.1:{server.port}",
        mint("api-wheel"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(client.communicate(), 60)
    assert client.returncode == 0, err.decode()
    created, no_services = out.decode().splitlines()
    assert created.startswith("documents/")
    assert created.endswith("|from the wheel")
    assert no_services == "no services"


def _install(venv: Path, wheel: Path) -> str:
    """A fresh venv with the wheel and its dependencies (from uv's cache when the
    pinned versions are there, as after `make setup`); what is installed there."""
    base = shutil.which("python3.11") or sys.executable
    subprocess.run([str(UV), "venv", "--quiet", "--python", base, str(venv)], check=True)
    subprocess.run(
        [
            str(UV),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            str(wheel),
        ],
        check=True,
    )
    return subprocess.run(
        [str(UV), "pip", "freeze", "--python", str(venv / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

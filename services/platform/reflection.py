"""Server reflection that serves the contracts with their comments.

grpcio-reflection answers from the process's descriptor pool, which the
generated `*_pb2` modules fill without `source_code_info`, so `grpcurl describe`
showed no documentation. This servicer answers file requests from the
descriptor set `make generate` writes with `--include_source_info`
(`generated/protomesh_descriptor_set.binpb`), the same one the gateway takes its
OpenAPI text from, and from the pool for files outside it (grpc.health.v1,
the reflection proto itself). Symbols are looked up in the pool, which holds
the same definitions (`make check-generated` keeps them in step).

Only `grpc.reflection.v1alpha` is served: grpcio-reflection (1.85) ships no
`grpc.reflection.v1`; grpcurl and buf curl fall back to v1alpha by themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2 as pb
from grpc_reflection.v1alpha import reflection_pb2_grpc as pb_grpc

import protomesh

DESCRIPTOR_SET = Path(protomesh.__file__).resolve().parent.parent / "protomesh_descriptor_set.binpb"


def commented_files(path: Path = DESCRIPTOR_SET) -> dict[str, bytes]:
    """File name → serialized FileDescriptorProto with source info, from a
    descriptor set (none when it is missing: the pool's files are served)."""
    if not path.exists():
        return {}
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    return {file.name: file.SerializeToString() for file in files.file}


class CommentedReflection(pb_grpc.ServerReflectionServicer):  # type: ignore[misc]
    """`grpc.reflection.v1alpha.ServerReflection` over `files`, then the pool."""

    def __init__(
        self,
        service_names: Iterable[str],
        files: Mapping[str, bytes],
        pool: descriptor_pool.DescriptorPool | None = None,
    ) -> None:
        self._services = tuple(sorted(service_names))
        self._files = dict(files)
        self._pool = pool or descriptor_pool.Default()

    async def ServerReflectionInfo(
        self, request_iterator: AsyncIterator[pb.ServerReflectionRequest], context: Any
    ) -> AsyncIterator[pb.ServerReflectionResponse]:
        async for request in request_iterator:
            yield self.answer(request)

    def answer(self, request: pb.ServerReflectionRequest) -> pb.ServerReflectionResponse:
        kind = request.WhichOneof("message_request")
        try:
            if kind == "file_by_filename":
                return self._files_of(request, request.file_by_filename)
            if kind == "file_containing_symbol":
                symbol = request.file_containing_symbol
                return self._files_of(request, self._pool.FindFileContainingSymbol(symbol).name)
            if kind == "file_containing_extension":
                wanted = request.file_containing_extension
                message = self._pool.FindMessageTypeByName(wanted.containing_type)
                extension = self._pool.FindExtensionByNumber(message, wanted.extension_number)
                return self._files_of(
                    request, self._pool.FindFileContainingSymbol(extension.full_name).name
                )
            if kind == "all_extension_numbers_of_type":
                message = self._pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
                numbers = sorted(e.number for e in self._pool.FindAllExtensions(message))
                return pb.ServerReflectionResponse(
                    original_request=request,
                    all_extension_numbers_response=pb.ExtensionNumberResponse(
                        base_type_name=message.full_name, extension_number=numbers
                    ),
                )
            if kind == "list_services":
                return pb.ServerReflectionResponse(
                    original_request=request,
                    list_services_response=pb.ListServiceResponse(
                        service=[pb.ServiceResponse(name=name) for name in self._services]
                    ),
                )
        except KeyError:
            return _error(request, grpc.StatusCode.NOT_FOUND, "not found")
        return _error(request, grpc.StatusCode.INVALID_ARGUMENT, "unknown request")

    def _files_of(
        self, request: pb.ServerReflectionRequest, name: str
    ) -> pb.ServerReflectionResponse:
        """`name` and every file it imports, transitively, `name` first."""
        order: list[str] = []
        pending = [name]
        protos: dict[str, bytes] = {}
        while pending:
            current = pending.pop()
            if current in protos:
                continue
            protos[current] = self._file(current)
            order.append(current)
            file = descriptor_pb2.FileDescriptorProto.FromString(protos[current])
            pending.extend(reversed(file.dependency))
        return pb.ServerReflectionResponse(
            original_request=request,
            file_descriptor_response=pb.FileDescriptorResponse(
                file_descriptor_proto=[protos[n] for n in order]
            ),
        )

    def _file(self, name: str) -> bytes:
        """The file with its comments when the descriptor set has it; from the pool
        (raises KeyError when unknown) otherwise."""
        if name not in self._files:
            proto = descriptor_pb2.FileDescriptorProto()
            self._pool.FindFileByName(name).CopyToProto(proto)
            self._files[name] = proto.SerializeToString()
        return self._files[name]


def _error(
    request: pb.ServerReflectionRequest, code: grpc.StatusCode, message: str
) -> pb.ServerReflectionResponse:
    return pb.ServerReflectionResponse(
        original_request=request,
        error_response=pb.ErrorResponse(error_code=code.value[0], error_message=message),
    )

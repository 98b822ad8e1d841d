"""Server reflection serves the contracts with their source comments (what
`grpcurl describe` prints), answers every request kind, and says NOT_FOUND for
what it does not know."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from services.platform.config import Settings
from services.platform.server import ServiceSpec
from tests.conftest import running

DOCUMENT_SERVICE = "protomesh.document.v1.DocumentService"
WATCH_CHANGES_DOC = "Streams document changes after `after_sequence` in sequence order"


def comments(file: descriptor_pb2.FileDescriptorProto) -> str:
    return "\n".join(location.leading_comments for location in file.source_code_info.location)


async def ask(
    channel: grpc.aio.Channel, *requests: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    async def stream() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        for request in requests:
            yield request

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    return [reply async for reply in stub.ServerReflectionInfo(stream())]


def files(
    reply: reflection_pb2.ServerReflectionResponse,
) -> list[descriptor_pb2.FileDescriptorProto]:
    return [
        descriptor_pb2.FileDescriptorProto.FromString(data)
        for data in reply.file_descriptor_response.file_descriptor_proto
    ]


async def test_a_reflection_client_gets_the_service_file_with_its_comments(
    probe_spec: ServiceSpec, settings: Settings
) -> None:
    """What grpcurl does, with the stock descriptor database client (a blocking one,
    so it runs in a thread against the server on this loop)."""

    def describe(port: int) -> descriptor_pb2.FileDescriptorProto:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            assert DOCUMENT_SERVICE in database.get_services()
            found: descriptor_pb2.FileDescriptorProto = database.FindFileContainingSymbol(
                DOCUMENT_SERVICE
            )
            return found

    async with running(probe_spec, settings) as (server, _):
        file = await asyncio.to_thread(describe, server.port)
    assert file.name == "protomesh/document/v1/document_service.proto"
    assert WATCH_CHANGES_DOC in comments(file)


async def test_a_symbol_brings_its_file_first_then_every_import_once(
    probe_channel: grpc.aio.Channel,
) -> None:
    (reply,) = await ask(
        probe_channel,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=DOCUMENT_SERVICE),
    )
    found = files(reply)
    names = [f.name for f in found]
    assert names[0] == "protomesh/document/v1/document_service.proto"
    assert len(names) == len(set(names))
    assert {"protomesh/common/v1/options.proto", "google/api/annotations.proto"} <= set(names)
    assert set(found[0].dependency) <= set(names)
    by_name = {f.name: f for f in found}
    assert "Per-RPC policy" in comments(by_name["protomesh/common/v1/options.proto"])


async def test_files_outside_the_contracts_come_from_the_pool(
    probe_channel: grpc.aio.Channel,
) -> None:
    health, by_name = await ask(
        probe_channel,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health"),
        reflection_pb2.ServerReflectionRequest(
            file_by_filename="protomesh/common/v1/options.proto"
        ),
    )
    assert files(health)[0].service[0].name == "Health"
    assert files(by_name)[0].name == "protomesh/common/v1/options.proto"


async def test_extensions_are_found_by_number(probe_channel: grpc.aio.Channel) -> None:
    extension = reflection_pb2.ExtensionRequest(
        containing_type="google.protobuf.MethodOptions", extension_number=51200
    )
    numbers, by_number = await ask(
        probe_channel,
        reflection_pb2.ServerReflectionRequest(
            all_extension_numbers_of_type="google.protobuf.MethodOptions"
        ),
        reflection_pb2.ServerReflectionRequest(file_containing_extension=extension),
    )
    assert {51200, 51201} <= set(numbers.all_extension_numbers_response.extension_number)
    assert files(by_number)[0].name == "protomesh/common/v1/options.proto"


async def test_unknown_names_are_not_found(probe_channel: grpc.aio.Channel) -> None:
    replies = await ask(
        probe_channel,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Service"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="no/such.proto"),
        reflection_pb2.ServerReflectionRequest(all_extension_numbers_of_type="no.Such"),
    )
    assert [r.error_response.error_code for r in replies] == [
        grpc.StatusCode.NOT_FOUND.value[0]
    ] * 3


async def test_every_service_lists_itself_health_and_reflection(
    probe_channel: grpc.aio.Channel,
) -> None:
    (reply,) = await ask(probe_channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    assert [s.name for s in reply.list_services_response.service] == sorted(
        [DOCUMENT_SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
    )

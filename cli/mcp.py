"""`protomesh mcp`: the MCP tools over stdio, for desktop agent hosts. Same tools
as the gateway's `/mcp`, calling the services directly over gRPC with one token
(`PROTOMESH_TOKEN`, or a dev token for `--tenant`/`--user`)."""

from __future__ import annotations

import anyio
from google.protobuf import descriptor_pool
from mcp.server.stdio import stdio_server

from gateway.backends import Backends
from gateway.comments import Comments
from gateway.config import DEFAULT_DESCRIPTOR_SET, GatewayConfig
from gateway.mcp import McpTools, build_server, rpc_tools
from services.platform.catalog import PROTOMESH_SERVICES
from services.platform.config import Settings


async def serve(settings: Settings, token: str) -> None:
    """Serves MCP on this process's stdin/stdout until the host closes it."""
    config = GatewayConfig.from_settings(settings)
    config.import_proto_modules()
    backends = Backends(config.backends)
    comments = Comments.from_path(
        DEFAULT_DESCRIPTOR_SET if DEFAULT_DESCRIPTOR_SET.exists() else None
    )
    pool = descriptor_pool.Default()
    tools = McpTools(
        backends, rpc_tools(sorted(PROTOMESH_SERVICES), pool.FindServiceByName, comments)
    )
    server = build_server(tools, lambda ctx: token)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await backends.close()


def run(settings: Settings, token: str) -> None:
    anyio.run(serve, settings, token)

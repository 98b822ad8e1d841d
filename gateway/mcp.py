"""MCP tools derived from the contracts.

Every RPC that carries the `protomesh.common.v1.mcp_tool` option is a tool: its
name, title and hints come from the option, its description from the RPC's doc
comment, its input and output schemas from the request and response messages
(the same descriptor → JSON Schema code as the OpenAPI document). Arguments are
the request in the proto3 JSON mapping; results are the response in the same
mapping, as structured content and as text. One tool is composite: `ask`, which
runs a `rag.answer` task and reports its progress.

Calls go over gRPC with the caller's bearer token; a failed call is a tool error
that names the gRPC status, never a protocol error.

`build_server(tools, token_of)` gives the MCP server; the gateway serves it over
Streamable HTTP at `/mcp` (token from the `Authorization` header) and
`protomesh mcp` over stdio (token from the environment).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc
import mcp_types as types
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from mcp.server.lowlevel.server import Server

from gateway.backends import Backends
from gateway.comments import Comments
from gateway.schema import Schema, message_json_schema
from protomesh.common.v1 import options_pb2
from protomesh.task.v1 import task_service_pb2 as task_pb
from services.platform.metrics import version as package_version
from services.task import following

TASK_SERVICE = "protomesh.task.v1.TaskService"
Progress = Callable[[float, float | None, str], Awaitable[None]]
CALL_TIMEOUT_SECONDS = 30.0
ASK_TIMEOUT_SECONDS = 120.0
# `ask` shipped with snake_case arguments; they are still accepted, as their
# lowerCamelCase names (the proto3 JSON spelling every other tool uses).
DEPRECATED_ASK_ARGUMENTS = {"top_k": "topK", "timeout_seconds": "timeoutSeconds"}


class ToolError(Exception):
    """A call that failed in a way the agent should read (bad arguments, a gRPC
    status): becomes a tool result with `isError`."""


@dataclass(frozen=True)
class RpcTool:
    """A tool that is one unary RPC."""

    tool: types.Tool
    path: str
    service: str
    request_class: type[Message]
    response_class: type[Message]


def tool_schema(desc: Descriptor, comments: Comments) -> Schema:
    """The message's JSON Schema with the root definition inlined: MCP wants
    `type: object` at the root, not a `$ref`."""
    schema = message_json_schema(desc, comments)
    ref = schema.pop("$ref", None)
    if ref is None:
        return schema
    definitions: dict[str, Schema] = schema.get("$defs", {})
    root = definitions[str(ref).removeprefix("#/$defs/")]
    return {**schema, **root}


def rpc_tools(
    services: Iterable[str], pool_lookup: Callable[[str], Any], comments: Comments
) -> list[RpcTool]:
    """A tool for every method of `services` that declares the `mcp_tool` option."""
    tools: list[RpcTool] = []
    for service_name in services:
        service = pool_lookup(service_name)
        for method in service.methods:
            option = _tool_option(method)
            if option is None:
                continue
            if method.client_streaming or method.server_streaming:
                raise ValueError(f"{method.full_name}: only unary RPCs can be MCP tools")
            annotations = types.ToolAnnotations(
                title=option.title or None,
                read_only_hint=option.read_only,
                destructive_hint=option.destructive,
                idempotent_hint=option.idempotent,
                open_world_hint=False,
            )
            tools.append(
                RpcTool(
                    tool=types.Tool(
                        name=option.name,
                        title=option.title or None,
                        description=comments.get(method.full_name) or option.title or option.name,
                        input_schema=tool_schema(method.input_type, comments),
                        output_schema=tool_schema(method.output_type, comments),
                        annotations=annotations,
                    ),
                    path=f"/{service.full_name}/{method.name}",
                    service=service.full_name,
                    request_class=GetMessageClass(method.input_type),
                    response_class=GetMessageClass(method.output_type),
                )
            )
    names = [t.tool.name for t in tools]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"MCP tool names must be unique; repeated: {', '.join(duplicated)}")
    return tools


def _tool_option(method: MethodDescriptor) -> options_pb2.McpTool | None:
    options: Any = method.GetOptions()
    if not options.HasExtension(options_pb2.mcp_tool):
        return None
    option: options_pb2.McpTool = options.Extensions[options_pb2.mcp_tool]
    return option


ASK_TOOL = types.Tool(
    name="ask",
    title="Ask your documents",
    description=(
        "Answers a question from the caller's documents with citations: runs a `rag.answer` "
        "task (hybrid search, then an answer whose sentences cite the retrieved chunks), "
        "reports its progress, and returns the answer text with the citations. A question "
        "the documents do not answer gets an answer that says so."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "question": {"type": "string", "minLength": 1, "maxLength": 2000},
            "topK": {
                "type": "integer",
                "minimum": 1,
                "maximum": 20,
                "default": 5,
                "description": "How many chunks to retrieve.",
            },
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Only documents with these labels.",
            },
            "timeoutSeconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 600,
                "default": ASK_TIMEOUT_SECONDS,
                "description": "How long to wait for the answer; the task keeps running after.",
            },
        },
        "required": ["question"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {
            "task": {"type": "string", "description": "The task's resource name."},
            "state": {"type": "string"},
            "answer": {"type": "string"},
            "citations": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["task", "state", "answer", "citations"],
    },
    annotations=types.ToolAnnotations(
        title="Ask your documents",
        read_only_hint=False,
        destructive_hint=False,
        idempotent_hint=False,
        open_world_hint=False,
    ),
)


class McpTools:
    """The tool set and how to call it through the backends."""

    def __init__(self, backends: Backends, tools: list[RpcTool]) -> None:
        self.backends = backends
        self.rpc = {t.tool.name: t for t in tools}
        self.with_ask = TASK_SERVICE in backends.addresses

    def list(self) -> list[types.Tool]:
        tools = [t.tool for t in self.rpc.values()]
        return [*tools, ASK_TOOL] if self.with_ask else tools

    async def call(
        self, name: str, arguments: Mapping[str, Any], token: str, progress: Progress | None
    ) -> types.CallToolResult:
        try:
            if name == ASK_TOOL.name and self.with_ask:
                result = await self._ask(arguments, token, progress)
            elif name in self.rpc:
                result = await self._call_rpc(self.rpc[name], arguments, token)
            else:
                raise ToolError(
                    f"unknown tool {name!r}; tools: {', '.join(t.name for t in self.list())}"
                )
        except ToolError as exc:
            return types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(result, indent=2))],
            structured_content=result,
        )

    async def _call_rpc(
        self, rpc: RpcTool, arguments: Mapping[str, Any], token: str
    ) -> dict[str, Any]:
        request = _parse(dict(arguments), rpc.request_class)
        response = await self._unary(rpc.service, rpc.path, request, rpc.response_class, token)
        return _json(response)

    async def _unary(
        self, service: str, path: str, request: Message, response: type[Message], token: str
    ) -> Any:
        """One unary call with the caller's token; failures become ToolErrors."""
        call = self.backends.channel(service).unary_unary(
            path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )
        return await _grpc(call(request, metadata=_auth(token), timeout=CALL_TIMEOUT_SECONDS))

    async def _ask(
        self, arguments: Mapping[str, Any], token: str, progress: Progress | None
    ) -> dict[str, Any]:
        question, top_k, labels, timeout = _ask_arguments(arguments)
        task = task_pb.Task(type="rag.answer")
        task.input.update({"question": question, "top_k": top_k})
        if labels:
            task.input.update({"filters": {"labels": labels}})
        channel = self.backends.channel(TASK_SERVICE)
        created: task_pb.Task = await self._unary(
            TASK_SERVICE,
            f"/{TASK_SERVICE}/CreateTask",
            task_pb.CreateTaskRequest(task=task),
            task_pb.Task,
            token,
        )
        try:
            await asyncio.wait_for(self._follow(channel, created.name, token, progress), timeout)
        except TimeoutError:
            raise ToolError(
                f"{created.name} did not finish within {timeout:g}s; it keeps running — "
                "call get_task with its name for the result"
            ) from None
        done: task_pb.Task = await self._unary(
            TASK_SERVICE,
            f"/{TASK_SERVICE}/GetTask",
            task_pb.GetTaskRequest(name=created.name),
            task_pb.Task,
            token,
        )
        state = task_pb.TaskState.Name(done.status.state).removeprefix("TASK_STATE_")
        if done.status.state != task_pb.TASK_STATE_COMPLETED:
            raise ToolError(f"{done.name} ended {state}: {done.status.message}")
        answer, citations = _answer(done)
        return {"task": done.name, "state": state, "answer": answer, "citations": citations}

    async def _follow(
        self, channel: grpc.aio.Channel, name: str, token: str, progress: Progress | None
    ) -> None:
        """Reads the task's event stream until a terminal state, reporting progress."""
        watch = channel.unary_stream(
            f"/{TASK_SERVICE}/WatchTask",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=task_pb.WatchTaskResponse.FromString,
        )
        reporter = ProgressReporter(progress) if progress is not None else None
        try:
            async for item in following.watch(partial(watch, metadata=_auth(token)), name):
                status = following.status_of(item)
                if status is None:
                    continue
                if reporter is not None:
                    await reporter.report(status)
                if status.state in following.STOPPED:
                    return
        except grpc.aio.AioRpcError as exc:
            raise ToolError(_describe(exc)) from None


class ProgressReporter:
    """MCP progress for a task, out of 100: only ever increasing, as MCP requires
    (WatchTask replays the task's history, whose statuses go back to 0, and a
    finished task's status carries no percentage), and 100 when it completes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.reported: float | None = None

    async def report(self, status: task_pb.TaskStatus) -> None:
        percent = min(float(status.progress.percent), 100.0)
        if status.state == task_pb.TASK_STATE_COMPLETED:
            percent = 100.0
        if self.reported is not None and percent <= self.reported:
            return
        self.reported = percent
        step = status.progress.step or task_pb.TaskState.Name(status.state)
        await self.progress(percent, 100.0, f"{step}: {status.message}".strip(": "))


def _answer(task: task_pb.Task) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    citations: list[dict[str, Any]] = []
    for artifact in task.artifacts:
        for part in artifact.parts:
            if part.HasField("text"):
                texts.append(part.text)
            elif part.HasField("data"):
                data = json_format.MessageToDict(part.data)
                if data.get("kind") == "citation":
                    citations.append(data)
    return "\n\n".join(texts), citations


def _ask_arguments(given: Mapping[str, Any]) -> tuple[str, int, dict[str, str], float]:
    arguments = dict(given)
    for old, new in DEPRECATED_ASK_ARGUMENTS.items():
        if old not in arguments:
            continue
        if new in arguments:
            raise ToolError(f"invalid arguments: {new}: given twice (also as {old})")
        arguments[new] = arguments.pop(old)
    unknown = sorted(set(arguments) - set(ASK_TOOL.input_schema["properties"]))
    if unknown:
        raise ToolError(f"invalid arguments: unknown field(s) {', '.join(unknown)}")
    question = arguments.get("question")
    if not isinstance(question, str) or not question.strip() or len(question) > 2000:
        raise ToolError(
            "invalid arguments: question: a non-empty string of at most 2000 characters"
        )
    top_k = arguments.get("topK", 5)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 20:
        raise ToolError("invalid arguments: topK: an integer from 1 to 20")
    labels = arguments.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ToolError("invalid arguments: labels: an object of string values")
    timeout = arguments.get("timeoutSeconds", ASK_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        raise ToolError("invalid arguments: timeoutSeconds: a number in (0, 600]")
    return question, top_k, labels, float(timeout)


def _parse(arguments: dict[str, Any], request_class: type[Message]) -> Message:
    try:
        return json_format.ParseDict(arguments, request_class())
    except json_format.ParseError as exc:
        raise ToolError(f"invalid arguments: {exc}") from None


def _json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


async def _grpc(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise ToolError(_describe(exc)) from None


def _describe(exc: grpc.aio.AioRpcError) -> str:
    """`CODE: message`, plus the field violations of an INVALID_ARGUMENT."""
    text = f"{exc.code().name}: {exc.details()}"
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            text += "".join(f"\n- {v.field}: {v.description}" for v in request.field_violations)
    return text


def build_server(
    tools: McpTools, token_of: Callable[[Any], str], version: str | None = None
) -> Server[Any]:
    """The MCP server over `tools`; `token_of(ctx)` gives the caller's bearer token.
    `serverInfo.version` is `version`, by default protomesh's installed version."""

    async def list_tools(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools.list())

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        token = token_of(ctx)
        progress_token = (ctx.meta or {}).get("progress_token") if ctx.meta else None
        progress: Progress | None = None
        if progress_token is not None:

            async def progress(done: float, total: float | None, message: str) -> None:
                await ctx.session.send_progress_notification(
                    progress_token, done, total, message, related_request_id=ctx.request_id
                )

        return await tools.call(params.name, params.arguments or {}, token, progress)

    return Server(
        "protomesh",
        version=version or package_version(),
        title="protomesh",
        instructions=(
            "Tools over the caller's documents, search and tasks. Use search_documents to find "
            "passages, ask for a cited answer, get_document/list_documents to read, and "
            "create_document to add text. Every call is scoped to the token's tenant."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )

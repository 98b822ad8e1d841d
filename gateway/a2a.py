"""A2A v1.0 on the gateway: the agent card at `/.well-known/agent-card.json`, the
HTTP+JSON binding under `/a2a` (the a2a-sdk's REST routes) and the JSON-RPC binding
at `/a2a/jsonrpc` (gateway/a2a_jsonrpc.py), both over one request handler that maps
them onto TaskService over gRPC with the caller's bearer token. A2A 0.3 clients are
served at the same URLs by the a2a-sdk's compat adapters over that handler.

- send message: a new task from the message (or, with `taskId`, input for a task
  waiting on the user); waits for a terminal or interrupted state unless
  `configuration.returnImmediately`;
- streaming send and subscribe: SSE of the Task first, then status and artifact
  updates, until the task stops; resumable, because subscribe starts from the
  task as it is now;
- get (with `historyLength`), list (paged, newest first), cancel.

gRPC statuses become the bindings' errors (gateway/a2a_errors.py). Over HTTP+JSON:
NOT_FOUND → 404 TaskNotFound, FAILED_PRECONDITION on cancel → 400 TaskNotCancelable
(reason TASK_NOT_CANCELABLE), INVALID_ARGUMENT → 400, UNAUTHENTICATED → 401 with
`WWW-Authenticate`, PERMISSION_DENIED → 403, RESOURCE_EXHAUSTED → 429,
UNAVAILABLE → 503; over JSON-RPC, the matching error codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from functools import partial
from typing import Any

import grpc
from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.routes.agent_card_routes import create_agent_card_routes
from a2a.server.routes.rest_routes import create_rest_routes
from a2a.types import a2a_pb2 as a2a
from a2a.utils import errors
from google.protobuf import json_format
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from gateway import a2a_mapping as mapping
from gateway import errors as gateway_errors
from gateway.a2a_errors import call_error
from gateway.a2a_jsonrpc import jsonrpc_routes
from gateway.agent_limits import DEFAULT_MAX_BODY_BYTES, BoundedBody
from gateway.backends import Backends
from gateway.mcp_http import bearer_token
from gateway.responses import send_error
from protomesh.task.v1 import task_service_pb2 as pb
from services.platform.metrics import version as package_version
from services.task import following

TASK_SERVICE = "protomesh.task.v1.TaskService"
A2A_PATH = "/a2a"
JSONRPC_PATH = "/jsonrpc"
CALL_TIMEOUT_SECONDS = 30.0
BLOCKING_SECONDS = 120.0
# TaskService's largest page, for counting the tasks a listing matches.
COUNT_PAGE_SIZE = 1000


class TaskServiceAgent(RequestHandler):
    """The A2A request handler backed by TaskService."""

    def __init__(self, backends: Backends, count_page_size: int = COUNT_PAGE_SIZE) -> None:
        self.backends = backends
        self.count_page_size = count_page_size

    # -- gRPC plumbing -------------------------------------------------------

    def _unary(self, method: str, response: type[Any]) -> Any:
        return self.backends.channel(TASK_SERVICE).unary_unary(
            f"/{TASK_SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )

    async def _call(
        self,
        method: str,
        request: Any,
        response: type[Any],
        context: ServerCallContext,
        cancel: bool = False,
    ) -> Any:
        try:
            return await self._unary(method, response)(
                request, metadata=_metadata(context), timeout=CALL_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise call_error(exc, context, cancel) from None

    async def _get(self, name: str, context: ServerCallContext, history: int = 0) -> pb.Task:
        task: pb.Task = await self._call(
            "GetTask",
            pb.GetTaskRequest(name=name, history_length=min(max(history, 0), 1000)),
            pb.Task,
            context,
        )
        return task

    async def _watch(
        self, name: str, context: ServerCallContext
    ) -> AsyncIterator[pb.WatchTaskResponse]:
        watch = self.backends.channel(TASK_SERVICE).unary_stream(
            f"/{TASK_SERVICE}/WatchTask",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.WatchTaskResponse.FromString,
        )
        try:
            async for item in following.watch(partial(watch, metadata=_metadata(context)), name):
                yield item
        except grpc.aio.AioRpcError as exc:
            raise call_error(exc, context) from None

    # -- A2A methods ---------------------------------------------------------

    async def on_get_task(
        self, params: a2a.GetTaskRequest, context: ServerCallContext
    ) -> a2a.Task | None:
        task = await self._get(_name(params.id), context, params.history_length)
        return mapping.to_a2a_task(task, params.history_length)

    async def on_list_tasks(
        self, params: a2a.ListTasksRequest, context: ServerCallContext
    ) -> a2a.ListTasksResponse:
        clauses = []
        if params.context_id:
            clauses.append(f'context_id = "{_quoted(params.context_id)}"')
        if params.status:
            clauses.append(f"state = {pb.TaskState.Name(mapping.from_a2a_state(params.status))}")
        if params.HasField("status_timestamp_after"):
            stamp = params.status_timestamp_after.ToJsonString()
            clauses.append(f'update_time > "{stamp}"')
        page_size = params.page_size or 50
        if not 1 <= page_size <= 100:
            raise errors.InvalidParamsError("pageSize: must be between 1 and 100")
        task_filter = " AND ".join(clauses)
        response = await self._list(task_filter, page_size, params.page_token, context)
        return a2a.ListTasksResponse(
            tasks=[
                mapping.to_a2a_task(task, 0, params.include_artifacts) for task in response.tasks
            ],
            next_page_token=response.next_page_token,
            page_size=page_size,
            total_size=await self._count(task_filter, response, params.page_token, context),
        )

    async def _list(
        self, task_filter: str, page_size: int, page_token: str, context: ServerCallContext
    ) -> pb.ListTasksResponse:
        response: pb.ListTasksResponse = await self._call(
            "ListTasks",
            pb.ListTasksRequest(page_size=page_size, page_token=page_token, filter=task_filter),
            pb.ListTasksResponse,
            context,
        )
        return response

    async def _count(
        self,
        task_filter: str,
        page: pb.ListTasksResponse,
        page_token: str,
        context: ServerCallContext,
    ) -> int:
        """How many tasks match `task_filter` on all pages together (A2A's `totalSize`).
        A first page that is also the last one says it; otherwise, as TaskService
        answers no count, the matching tasks are paged through, `count_page_size` at
        a time."""
        if not page_token and not page.next_page_token:
            return len(page.tasks)
        total, token = 0, ""
        while True:
            counted = await self._list(task_filter, self.count_page_size, token, context)
            total += len(counted.tasks)
            token = counted.next_page_token
            if not token:
                return total

    async def on_cancel_task(
        self, params: a2a.CancelTaskRequest, context: ServerCallContext
    ) -> a2a.Task | None:
        current = await self._get(_name(params.id), context)
        if current.status.state in following.FINISHED:
            state = pb.TaskState.Name(current.status.state).removeprefix("TASK_STATE_")
            raise errors.TaskNotCancelableError(f"{current.name} is already {state}")
        task: pb.Task = await self._call(
            "CancelTask",
            pb.CancelTaskRequest(name=_name(params.id), reason="canceled through A2A"),
            pb.Task,
            context,
            cancel=True,
        )
        return mapping.to_a2a_task(task)

    async def on_message_send(
        self, params: a2a.SendMessageRequest, context: ServerCallContext
    ) -> a2a.Task | a2a.Message:
        task = await self._start(params, context)
        history = params.configuration.history_length
        if params.configuration.return_immediately or task.status.state in following.STOPPED:
            return mapping.to_a2a_task(task, history)
        try:
            async with asyncio.timeout(BLOCKING_SECONDS):
                async for item in self._watch(task.name, context):
                    if following.stopped(item):
                        break
        except TimeoutError:
            pass  # answer with the task as it is; the client can subscribe
        return mapping.to_a2a_task(await self._get(task.name, context, history), history)

    async def on_message_send_stream(
        self, params: a2a.SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        task = await self._start(params, context)
        async for event in self._events(task.name, context):
            yield event

    async def on_subscribe_to_task(
        self, params: a2a.SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        async for event in self._events(_name(params.id), context):
            yield event

    async def _events(self, name: str, context: ServerCallContext) -> AsyncGenerator[Event]:
        """The task first, then its status and artifact updates until it stops."""
        current: pb.Task | None = None
        async for item in self._watch(name, context):
            if item.HasField("task"):
                current = item.task
                yield mapping.to_a2a_task(current)
                if current.status.state in following.STOPPED:
                    return
                continue
            if current is None:
                continue
            for event in mapping.to_a2a_events(current, item.event):
                yield event
            if following.stopped(item):
                return

    async def _start(self, params: a2a.SendMessageRequest, context: ServerCallContext) -> pb.Task:
        message = params.message
        metadata = json_format.MessageToDict(params.metadata) if params.HasField("metadata") else {}
        try:
            if message.task_id:
                request: Any = pb.SendTaskInputRequest(name=_name(message.task_id))
                request.input.update(mapping.follow_up_input(message))
                task: pb.Task = await self._call("SendTaskInput", request, pb.Task, context)
                return task
            create = pb.CreateTaskRequest(task=mapping.new_task(message, metadata))
            if message.message_id:
                create.request_id = f"a2a-{message.message_id}"[:128]
        except mapping.MappingError as exc:
            raise errors.InvalidParamsError(str(exc)) from None
        created: pb.Task = await self._call("CreateTask", create, pb.Task, context)
        return created

    # -- not offered -----------------------------------------------------------

    async def on_create_task_push_notification_config(
        self, params: Any, context: ServerCallContext
    ) -> Any:
        raise errors.PushNotificationNotSupportedError()

    async def on_get_task_push_notification_config(
        self, params: Any, context: ServerCallContext
    ) -> Any:
        raise errors.PushNotificationNotSupportedError()

    async def on_list_task_push_notification_configs(
        self, params: Any, context: ServerCallContext
    ) -> Any:
        raise errors.PushNotificationNotSupportedError()

    async def on_delete_task_push_notification_config(
        self, params: Any, context: ServerCallContext
    ) -> Any:
        raise errors.PushNotificationNotSupportedError()

    async def on_get_extended_agent_card(self, params: Any, context: ServerCallContext) -> Any:
        raise errors.ExtendedAgentCardNotConfiguredError()


def _metadata(context: ServerCallContext) -> tuple[tuple[str, str], ...]:
    token = bearer_token(context.state.get("headers", {}))
    return (("authorization", f"Bearer {token}"),) if token else ()


def _name(identifier: str) -> str:
    try:
        return mapping.task_name(identifier)
    except mapping.MappingError as exc:
        raise errors.TaskNotFoundError(str(exc)) from None


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def interfaces(base_url: str) -> list[a2a.AgentInterface]:
    """The bindings the gateway serves, the preferred first: A2A 1.0 over
    HTTP+JSON under `/a2a` and over JSON-RPC at `/a2a/jsonrpc`, then A2A 0.3 over
    both at the same URLs (the a2a-sdk writes the card's 0.3 fields — `url` and
    `preferredTransport` from the first 0.3 interface, JSON-RPC as 0.3 clients
    prefer, and `additionalInterfaces` from the rest)."""
    root = base_url.rstrip("/") + A2A_PATH
    return [
        a2a.AgentInterface(url=root, protocol_binding="HTTP+JSON", protocol_version="1.0"),
        a2a.AgentInterface(
            url=root + JSONRPC_PATH, protocol_binding="JSONRPC", protocol_version="1.0"
        ),
        a2a.AgentInterface(
            url=root + JSONRPC_PATH, protocol_binding="JSONRPC", protocol_version="0.3"
        ),
        a2a.AgentInterface(url=root, protocol_binding="HTTP+JSON", protocol_version="0.3"),
    ]


def agent_card(base_url: str, version: str | None = None) -> a2a.AgentCard:
    """protomesh's agent card (`version`: protomesh's installed version by default)."""
    card = a2a.AgentCard(
        name="protomesh",
        description=(
            "Answers questions and researches topics from the caller's own documents, with "
            "citations. Every call is scoped to the tenant of the bearer token."
        ),
        version=version or package_version(),
        supported_interfaces=interfaces(base_url),
        capabilities=a2a.AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/markdown", "application/json"],
        skills=[
            a2a.AgentSkill(
                id=skill.id,
                name=skill.name,
                description=skill.description,
                tags=["retrieval", "citations"],
                examples=list(skill.examples),
                input_modes=["text/plain", "application/json"],
                output_modes=["text/markdown", "application/json"],
            )
            for skill in mapping.SKILLS.values()
        ],
    )
    card.security_schemes["bearer"].http_auth_security_scheme.CopyFrom(
        a2a.HTTPAuthSecurityScheme(
            scheme="Bearer",
            bearer_format="JWT",
            description="A protomesh JWT (tenant_id, sub, scope).",
        )
    )
    requirement = card.security_requirements.add()
    requirement.schemes["bearer"].SetInParent()
    return card


class RequireBearer:
    """Refuses A2A calls without a bearer token (401 + `WWW-Authenticate`) and adds
    the challenge header to any 401 the binding answers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not bearer_token(Request(scope).headers):
            refusal = gateway_errors.unauthenticated(
                "A2A calls need an Authorization: Bearer <token> header"
            )
            await send_error(send, refusal, [])
            return

        async def challenge(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                message["headers"] = [
                    *message.get("headers", []),
                    (b"www-authenticate", gateway_errors.WWW_AUTHENTICATE.encode()),
                ]
            await send(message)

        await self.app(scope, receive, challenge)


def a2a_routes(
    backends: Backends, base_url: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> list[BaseRoute]:
    """The agent card and both bindings' routes over one request handler (bodies
    up to `max_body_bytes`), or none without a TaskService."""
    if TASK_SERVICE not in backends.addresses:
        return []
    from starlette.routing import Mount, Router

    agent = TaskServiceAgent(backends)
    binding = Router(
        routes=[
            *create_rest_routes(agent, enable_v0_3_compat=True),
            *jsonrpc_routes(agent, JSONRPC_PATH),
        ]
    )
    return [
        *create_agent_card_routes(agent_card(base_url)),
        Mount(A2A_PATH, app=RequireBearer(BoundedBody(binding, max_body_bytes))),
    ]

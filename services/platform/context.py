"""Per-call context: who is calling, under which request id, until when.

The interceptor chain fills a `CallContext` for every RPC and binds it to a
context variable, so handlers and the client factory (deadline and identity
propagation) read it without threading it through every signature.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from services.platform.auth import Principal
from services.platform.policy import MethodInfo


@dataclass
class CallContext:
    """What the interceptors learned about the current call."""

    method: MethodInfo
    request_id: str
    principal: Principal | None = None
    deadline: float | None = None  # time.monotonic() value, None for no deadline
    token: str = ""  # the caller's bearer token, forwarded to downstream services
    traceparent: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def time_remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    @property
    def trace_id(self) -> str:
        """Trace id of the caller's W3C traceparent (`00-<trace id>-<span id>-<flags>`)."""
        parts = self.traceparent.split("-")
        return parts[1] if len(parts) == 4 else ""

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id if self.principal else ""


_current: ContextVar[CallContext | None] = ContextVar("protomesh_call", default=None)


def current_call() -> CallContext:
    """The context of the RPC being handled; raises outside of one."""
    call = _current.get()
    if call is None:
        raise RuntimeError("no RPC in progress")
    return call


def maybe_current_call() -> CallContext | None:
    return _current.get()


def bind_call(call: CallContext) -> object:
    return _current.set(call)


def principal() -> Principal:
    """The verified caller of the current RPC."""
    found = current_call().principal
    if found is None:
        raise RuntimeError("RPC has no authenticated principal")
    return found

"""Deadlines: every call has one (the caller's, or the method's default from the
contract), handlers see what remains, and downstream calls get the remainder
minus a safety margin."""

from __future__ import annotations

import time

import grpc

from services.platform.context import maybe_current_call
from services.platform.policy import MethodInfo

PROPAGATION_MARGIN_SECONDS = 0.05


def effective_timeout(context: grpc.aio.ServicerContext, method: MethodInfo) -> float | None:
    """Seconds left for this call: the caller's deadline, else the method default."""
    remaining = context.time_remaining()
    if remaining is not None and remaining < 1e9:
        return max(float(remaining), 0.0)
    return method.default_deadline


def absolute_deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def downstream_timeout(cap: float | None = None) -> float | None:
    """Timeout for a call made while handling an RPC: what remains of the current
    deadline minus a margin, never above `cap`."""
    call = maybe_current_call()
    remaining = call.time_remaining() if call else None
    if remaining is not None:
        remaining = max(remaining - PROPAGATION_MARGIN_SECONDS, 0.001)
    if cap is None:
        return remaining
    return cap if remaining is None else min(remaining, cap)

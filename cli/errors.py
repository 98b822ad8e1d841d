"""How every `protomesh` command fails: one line on stderr and a documented exit code.

The translation happens once, in `ProtomeshGroup.invoke` (the root command group),
around whatever command runs: a gRPC status, a refused connection, a bad
configuration value or a timeout becomes a `Failure` (exit code + one line);
anything unexpected still ends in one line ("internal error: ...", exit 1).
`protomesh --debug COMMAND` lets the exception through with its traceback.
Usage errors stay click's own (exit 2, its usage message).

This module is imported for `protomesh --help`, so it imports nothing heavy at
module level: gRPC, httpx and asyncpg are only looked at once an exception of
theirs is already in hand (their modules are then in `sys.modules`).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from typer import _click as click  # typer vendors click
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit


class ExitCode(IntEnum):
    """Exit codes of every `protomesh` command (docs/cli.md, `protomesh --help`)."""

    OK = 0
    FAILED = 1  # anything else: a wait that timed out, an unexpected error
    USAGE = 2  # bad arguments or options (click's own), or a bad PROTOMESH_* value
    UNREACHABLE = 3  # no server answered: refused, UNAVAILABLE, DEADLINE_EXCEEDED
    REFUSED = 4  # UNAUTHENTICATED, PERMISSION_DENIED: the token was not good enough
    NOT_FOUND = 5  # NOT_FOUND
    REJECTED = 6  # INVALID_ARGUMENT, FAILED_PRECONDITION and other server errors
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 other failure (e.g. a wait timed out); 2 usage or configuration "
    "error; 3 server unreachable; 4 refused (UNAUTHENTICATED, PERMISSION_DENIED); "
    "5 not found; 6 rejected (INVALID_ARGUMENT, FAILED_PRECONDITION, other server errors); "
    "130 interrupted. "
    "Errors are one line on stderr; --debug shows the traceback."
)

# gRPC status code name → exit code; names not listed are REJECTED.
_GRPC_EXIT = {
    "UNAVAILABLE": ExitCode.UNREACHABLE,
    "DEADLINE_EXCEEDED": ExitCode.UNREACHABLE,
    "UNAUTHENTICATED": ExitCode.REFUSED,
    "PERMISSION_DENIED": ExitCode.REFUSED,
    "NOT_FOUND": ExitCode.NOT_FOUND,
    "CANCELLED": ExitCode.FAILED,
}


@dataclass(frozen=True)
class Failure:
    """What a command that failed prints (one line) and exits with."""

    code: ExitCode
    message: str


class CommandFailed(Exception):
    """Raised by a command to end with `message` and `code` (no traceback)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


class ConfigurationError(Exception):
    """The PROTOMESH_* environment did not parse; `problems` names each bad variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def one_line(text: str) -> str:
    """`text` with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def _grpc_failure(exc: Any) -> Failure:
    code = exc.code()
    name = getattr(code, "name", str(code))
    details = one_line(exc.details() or "")
    exit_code = _GRPC_EXIT.get(name, ExitCode.REJECTED)
    if exit_code is ExitCode.UNREACHABLE:
        hint = "server unreachable" if name == "UNAVAILABLE" else "no answer in time"
        return Failure(exit_code, f"{hint} ({name}): {details}")
    return Failure(exit_code, f"{name}: {details}")


def _is_grpc_error(exc: BaseException) -> bool:
    grpc = sys.modules.get("grpc")
    return grpc is not None and isinstance(exc, grpc.RpcError) and hasattr(exc, "code")


def _is_httpx_transport_error(exc: BaseException) -> bool:
    httpx = sys.modules.get("httpx")
    return httpx is not None and isinstance(exc, httpx.TransportError)


def describe(exc: BaseException) -> Failure:
    """The exit code and the one line for `exc`."""
    if isinstance(exc, CommandFailed):
        return Failure(exc.code, one_line(str(exc)))
    if isinstance(exc, ConfigurationError):
        return Failure(ExitCode.USAGE, "configuration: " + "; ".join(exc.problems))
    if _is_grpc_error(exc):
        return _grpc_failure(exc)
    if isinstance(exc, ConnectionError) or _is_httpx_transport_error(exc):
        return Failure(ExitCode.UNREACHABLE, f"server unreachable: {one_line(str(exc)) or exc!r}")
    if isinstance(exc, TimeoutError):
        return Failure(ExitCode.UNREACHABLE, f"no answer in time: {one_line(str(exc))}".rstrip())
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        # asyncpg and sockets report a refused or unreachable host as OSError.
        unreachable = exc.errno in _UNREACHABLE_ERRNOS
        code = ExitCode.UNREACHABLE if unreachable else ExitCode.FAILED
        return Failure(code, f"{exc.strerror}{where}")
    if isinstance(exc, asyncio.CancelledError):
        # A client stream cancelled because its call failed: report the failure.
        cause = exc.__cause__ or exc.__context__
        if cause is not None and cause is not exc and not isinstance(cause, asyncio.CancelledError):
            return describe(cause)
        return Failure(ExitCode.FAILED, "interrupted: the call was cancelled")
    if isinstance(exc, KeyboardInterrupt):
        return Failure(ExitCode.INTERRUPTED, "interrupted")
    text = one_line(str(exc))
    return Failure(
        ExitCode.FAILED,
        f"internal error: {type(exc).__name__}"
        + (f": {text}" if text else "")
        + " (run with --debug for the traceback)",
    )


def _unreachable_errnos() -> frozenset[int]:
    import errno

    names = ("ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "ETIMEDOUT")
    return frozenset(getattr(errno, name) for name in names if hasattr(errno, name))


_UNREACHABLE_ERRNOS = _unreachable_errnos()


def fail(failure: Failure) -> Exit:
    """Prints `failure`'s line on stderr; returns the Exit to raise."""
    click.echo(f"error: {failure.message}", err=True)
    return Exit(int(failure.code))


def debugging(ctx: click.Context) -> bool:
    """Whether `--debug` was given (the root group's option)."""
    return bool(ctx.find_root().params.get("debug"))


class ProtomeshGroup(TyperGroup):
    """The root group: runs the command and translates what escapes it."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, Exit, Abort):
            raise
        except (Exception, asyncio.CancelledError, KeyboardInterrupt) as exc:
            if debugging(ctx):
                raise
            raise fail(describe(exc)) from None

"""The CLI's one error-translation layer: what each kind of failure prints (one
line on stderr) and exits with, and that --debug lets the traceback through."""

from __future__ import annotations

import asyncio
import errno
from typing import Annotated

import grpc
import pytest
import typer
from typer.testing import CliRunner

from cli.errors import (
    CommandFailed,
    ConfigurationError,
    ExitCode,
    ProtomeshGroup,
    describe,
)


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (grpc.StatusCode.UNAVAILABLE, ExitCode.UNREACHABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ExitCode.UNREACHABLE),
        (grpc.StatusCode.UNAUTHENTICATED, ExitCode.REFUSED),
        (grpc.StatusCode.PERMISSION_DENIED, ExitCode.REFUSED),
        (grpc.StatusCode.NOT_FOUND, ExitCode.NOT_FOUND),
        (grpc.StatusCode.INVALID_ARGUMENT, ExitCode.REJECTED),
        (grpc.StatusCode.FAILED_PRECONDITION, ExitCode.REJECTED),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ExitCode.REJECTED),
        (grpc.StatusCode.INTERNAL, ExitCode.REJECTED),
    ],
)
def test_grpc_statuses_map_to_documented_exit_codes(
    code: grpc.StatusCode, exit_code: ExitCode
) -> None:
    failure = describe(rpc_error(code, "what the\nserver said"))

    assert failure.code is exit_code
    assert code.name in failure.message
    assert "what the server said" in failure.message  # newlines folded into one line
    assert "\n" not in failure.message


def test_other_failures_map_to_documented_exit_codes() -> None:
    refused = describe(ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"))
    missing = describe(FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"))
    config = describe(ConfigurationError(["PROTOMESH_A='x': expected an integer", "B bad"]))
    own = describe(CommandFailed("2 file(s) failed", ExitCode.REJECTED))
    unexpected = describe(RuntimeError("boom"))
    cancelled = describe(asyncio.CancelledError())

    assert refused.code is ExitCode.UNREACHABLE
    assert (missing.code, missing.message) == (ExitCode.FAILED, "No such file or directory /x")
    assert config.code is ExitCode.USAGE
    assert config.message == "configuration: PROTOMESH_A='x': expected an integer; B bad"
    assert (own.code, own.message) == (ExitCode.REJECTED, "2 file(s) failed")
    assert unexpected.code is ExitCode.FAILED
    assert "RuntimeError: boom" in unexpected.message
    assert "--debug" in unexpected.message
    assert cancelled.code is ExitCode.FAILED


def test_a_cancellation_caused_by_a_failed_call_reports_the_call() -> None:
    cancelled = asyncio.CancelledError()
    cancelled.__context__ = rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused")

    failure = describe(cancelled)

    assert failure.code is ExitCode.UNREACHABLE
    assert "connection refused" in failure.message


def app_raising(exc: BaseException) -> typer.Typer:
    """A tiny app with the root group and a --debug option, like `protomesh`."""
    app = typer.Typer(cls=ProtomeshGroup, pretty_exceptions_enable=False, rich_markup_mode=None)

    @app.callback()
    def root(debug: Annotated[bool, typer.Option("--debug")] = False) -> None:
        pass

    @app.command()
    def fails() -> None:
        raise exc

    @app.command()
    def usage(count: int) -> None:
        pass

    return app


def test_the_root_group_ends_in_one_stderr_line_and_the_exit_code() -> None:
    app = app_raising(rpc_error(grpc.StatusCode.NOT_FOUND, "tasks/x not found"))

    result = CliRunner().invoke(app, ["fails"])

    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stdout == ""
    assert result.stderr == "error: NOT_FOUND: tasks/x not found\n"
    assert isinstance(result.exception, SystemExit)


def test_debug_lets_the_exception_through() -> None:
    app = app_raising(RuntimeError("boom"))

    result = CliRunner().invoke(app, ["--debug", "fails"])

    assert isinstance(result.exception, RuntimeError)
    assert result.stderr == ""


def test_usage_errors_stay_clicks_own() -> None:
    result = CliRunner().invoke(app_raising(RuntimeError()), ["usage", "many"])

    assert result.exit_code == ExitCode.USAGE
    assert "Error: Invalid value for" in result.stderr
    assert "Traceback" not in result.output


def test_ctrl_c_is_interrupted() -> None:
    result = CliRunner().invoke(app_raising(KeyboardInterrupt()), ["fails"])

    assert result.exit_code == ExitCode.INTERRUPTED
    assert result.stderr == "error: interrupted\n"

"""The `protomesh` command line.

Only typer and light CLI modules are imported here: gRPC, the generated stubs,
the services, Rich and the database drivers are imported inside the commands that
use them, so `protomesh --help` and shell completion start fast. Failures end in
one line on stderr and an exit code from `cli.errors.ExitCode` (translated once,
by the root group `ProtomeshGroup`); `protomesh --debug ...` shows tracebacks.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.choices import GroupBy, OutputFormat, SearchMode, TaskState
from cli.default_group import DefaultCommandGroup
from cli.errors import (
    EXIT_CODES_HELP,
    CommandFailed,
    ConfigurationError,
    ExitCode,
    ProtomeshGroup,
)
from cli.output import wants_json

if TYPE_CHECKING:
    from rich.console import Console

    from cli.waiting import Waited
    from services.platform.config import Settings


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("protomesh")
        except PackageNotFoundError:  # run from a checkout that was never installed
            found = "unknown"
        typer.echo(f"protomesh {found}")
        raise typer.Exit()


app = typer.Typer(
    cls=ProtomeshGroup,
    help="protomesh: a spec-first gRPC service mesh for AI-agent back ends.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    # Plain click help: Rich's help renderer alone takes ~0.2 s to import.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@app.callback()
def protomesh(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the traceback of a failure instead of one line."),
    ] = False,
) -> None:
    """protomesh: a spec-first gRPC service mesh for AI-agent back ends."""


def _console(stderr: bool = False) -> Console:
    """A Rich console on stdout (or stderr), made per command so that it follows
    the streams and the terminal width of this invocation."""
    from rich.console import Console

    return Console(stderr=stderr)


def _quiet_console() -> Console:
    from rich.console import Console

    return Console(quiet=True)


DEFAULT_SCOPES = (
    "documents:read documents:write search:read tasks:read tasks:write cost:read cost:write"
)
ADMIN_SCOPES = f"{DEFAULT_SCOPES} search:admin"  # for `search reindex` only
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", metavar="DIR", help="Overrides PROTOMESH_DATA_DIR.", show_default=False
    ),
]
OutputOpt = Annotated[
    OutputFormat,
    typer.Option(
        "--output", "-o", case_sensitive=False, help="table for people, json for scripts."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Same as --output json.")]


def _settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """The settings tree from the environment and flags; a bad PROTOMESH_* value
    ends the command with the configuration's report (exit 2)."""
    from services.platform import config

    errors = (ValueError, getattr(config, "ConfigError", ValueError))
    try:
        return config.Settings.from_env(data_dir=data_dir, **overrides)
    except errors as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        raise ConfigurationError([str(p) for p in problems]) from exc


@app.command()
def up(
    data_dir: DataDir = None,
    workers: Annotated[
        int,
        typer.Option(metavar="N", help="Task worker coroutines per worker process (0 for none)."),
    ] = 2,
    replicas: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="N",
            help="Processes per service (and task-worker processes and gateway workers), "
            "so one machine uses all its cores [PROTOMESH_REPLICAS, else 1].",
            show_default=False,
        ),
    ] = None,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls",
            help="TLS on every hop with a dev CA and certificates made in DATA_DIR/tls "
            "(mutual TLS too with PROTOMESH_TLS_CLIENT_AUTH=require).",
        ),
    ] = False,
) -> None:
    """Start PostgreSQL, migrate, run every service, the workers and the gateway; Ctrl-C stops."""
    from dataclasses import replace

    from rich.table import Table

    from cli.launcher import SERVICES, start_system, wait_for_signal, with_dev_tls

    console = _console()
    settings = _settings(data_dir, replicas=replicas)
    if settings.replicas > settings.gateway.workers:
        gateway = replace(settings.gateway, workers=settings.replicas)
        settings = replace(settings, gateway=gateway)
    dev_certificates = None
    if tls:
        settings, dev_certificates = with_dev_tls(settings)
    with console.status("starting protomesh (PostgreSQL, migrations, services)..."):
        system = start_system(settings, workers)
    table = Table(title="protomesh is up", show_lines=False)
    table.add_column("component")
    table.add_column("endpoint")
    for name in SERVICES:
        table.add_row(f"{name} (gRPC)", settings.address_of(name))
    if settings.replicas > 1:
        table.add_row("replicas", f"{settings.replicas} per service (ports + 100·i)")
    if any(c.name == "gateway" for c in system.children):
        base = settings.gateway_url
        table.add_row("gateway (REST)", base)
        table.add_row("OpenAPI", f"{base}/openapi.json")
    table.add_row("PostgreSQL", "embedded" if system.postgres else "external")
    table.add_row("logs", str(settings.data_dir / "logs"))
    if settings.tls.enabled:
        mutual = settings.tls.client_auth == "require"
        table.add_row("TLS", f"CA {settings.tls.ca}" + (", mutual" if mutual else ""))
    console.print(table)
    document = settings.replica_addresses("document")[0]
    transport = "-plaintext"
    if settings.tls.enabled:
        transport = f"-cacert {settings.tls.ca}"
        if dev_certificates is not None and settings.tls.client_auth == "require":
            transport += f" -cert {dev_certificates.client} -key {dev_certificates.client_key}"
    console.print(
        "Get a token:  [bold]protomesh token --tenant acme --user alice[/bold]\n"
        f'Try it:       grpcurl {transport} -H "authorization: Bearer $TOKEN" {document} list'
    )
    if dev_certificates is not None:
        # Other terminals' `protomesh` commands dial with TLS only when told to.
        client = dev_certificates
        console.print(
            "In another shell: "
            f"export PROTOMESH_TLS_CA={client.ca} "
            f"PROTOMESH_TLS_CERT={client.client} PROTOMESH_TLS_KEY={client.client_key}"
        )
    console.print("Press Ctrl-C to stop.")
    try:
        wait_for_signal()
    finally:
        with console.status("stopping..."):
            system.stop()
        console.print("stopped.")


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply pending schema migrations (embedded PostgreSQL unless PROTOMESH_DATABASE_URL)."""
    import asyncio

    from services.platform.embedded import EmbeddedPostgres
    from services.platform.migrations import migrate as run_migrations

    console = _console()
    settings = _settings(data_dir)
    postgres = None
    dsn = settings.database_url
    if not dsn:
        postgres = EmbeddedPostgres(settings.data_dir / "pg")
        dsn = postgres.start()
    try:
        applied = asyncio.run(run_migrations(dsn))
    finally:
        if postgres is not None:
            postgres.stop()
    for migration in applied:
        console.print(f"applied {migration.service}/{migration.version}")
    console.print(f"{len(applied)} migration(s) applied; schema is up to date.")


@app.command()
def token(
    tenant: Annotated[str, typer.Option(metavar="TENANT", help="tenant_id claim.")],
    user: Annotated[str, typer.Option(metavar="USER", help="sub claim (user id).")] = "dev",
    scope: Annotated[
        str, typer.Option(metavar="SCOPES", help="Space-separated scopes.")
    ] = DEFAULT_SCOPES,
    ttl: Annotated[int, typer.Option(min=1, metavar="SECONDS", help="Lifetime in seconds.")] = 3600,
    data_dir: DataDir = None,
) -> None:
    """Print a dev token signed with the local dev key (created on first use)."""
    from services.platform.identity import KEY_FILE, ensure_dev_key, load_key, mint_token

    settings = _settings(data_dir)
    ensure_dev_key(settings.data_dir)
    key = load_key(settings.data_dir / KEY_FILE)
    print(
        mint_token(
            key,
            tenant=tenant,
            user=user,
            scopes=scope,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=ttl,
        )
    )


TenantOpt = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        metavar="TENANT",
        help="Tenant for the dev token [PROTOMESH_TENANT, else default].",
        show_default=False,
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        metavar="USER",
        help="User for the dev token [PROTOMESH_USER, else dev].",
        show_default=False,
    ),
]


def _caller_token(
    settings: Settings, tenant: str | None, user: str | None, scopes: str = DEFAULT_SCOPES
) -> str:
    """`PROTOMESH_TOKEN` when set (it must carry the scopes itself), else a
    short-lived dev token with `scopes` from the local key."""
    from services.platform.identity import KEY_FILE, ensure_dev_key, load_key, mint_token

    if settings.client.token:
        return settings.client.token
    ensure_dev_key(settings.data_dir)
    return mint_token(
        load_key(settings.data_dir / KEY_FILE),
        tenant=tenant or settings.client.tenant,
        user=user or settings.client.user,
        scopes=scopes,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=3600,
    )


@app.command()
def ask(
    question: Annotated[
        str, typer.Argument(metavar="QUESTION", help="What to ask about your documents.")
    ],
    top_k: Annotated[int, typer.Option(min=1, metavar="N", help="Chunks to retrieve.")] = 5,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Ask a question (a rag.answer task) and watch the answer arrive with citations.
    With --output json: wait quietly, then print the finished task."""
    import asyncio

    from cli import tasks as task_cli
    from services.platform.channels import endpoint

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    as_json = wants_json(output, json_flag)
    asyncio.run(
        task_cli.ask(
            endpoint(settings, "task"),
            token_value,
            question,
            _console(),
            top_k,
            as_json=as_json,
        )
    )


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"labels are key=value, got {pair!r}")
        labels[key] = value
    return labels


WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait", help="Wait until the index has caught up (see above) before returning."
    ),
]


def _wait_timeout_opt(default_help: str) -> Any:
    return typer.Option(
        "--wait-timeout",
        min=0,
        metavar="SECONDS",
        help=f"Give up waiting (exit 1) after this long; {default_help}",
    )


def _run_and_wait(
    run: Callable[[], Coroutine[Any, Any, Waited | None]], on_timeout: str
) -> Waited | None:
    """Runs a command's `run` (its call, then the wait it asked for): a timeout
    ends the command (exit 1); an index that cannot finish now is a warning on
    stderr. gRPC failures are left to the root group's translation."""
    import asyncio

    from cli.waiting import WaitTimeout, degraded_warning

    try:
        waited = asyncio.run(run())
    except WaitTimeout as err:
        raise CommandFailed(f"{err}{on_timeout}", ExitCode.FAILED) from err
    if waited is not None and not waited.complete:
        _console(stderr=True).print(f"[yellow]{degraded_warning(waited)}[/yellow]", soft_wrap=True)
    return waited


def _waited_json(waited: Waited | None) -> dict[str, Any] | None:
    """How the wait ended, for --output json (None when there was no wait)."""
    if waited is None:
        return None
    return {
        "complete": waited.complete,
        "stoppedAt": waited.stopped.name if waited.stopped else None,
        "remaining": waited.remaining,
        "appliedSequence": waited.status.applied_sequence,
        "pendingEmbeddingCount": waited.status.pending_embedding_count,
    }


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            exists=True, readable=True, metavar="PATH...", help="Files or directories to ingest."
        ),
    ],
    label: Annotated[
        list[str], typer.Option(metavar="KEY=VALUE", help="Label on every document (repeatable).")
    ] = [],  # noqa: B006
    wait: WaitOpt = True,
    wait_timeout: Annotated[
        float, _wait_timeout_opt("the documents stay ingested and become searchable later.")
    ] = 600.0,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Stream text, Markdown and HTML files into DocumentService (idempotent on re-run),
    then wait until they are searchable.

    The wait has two phases, each with a progress bar: "keyword" until the search
    index has applied the change feed up to the newest document written (keyword
    search finds them), then "vector" until none of the tenant's chunks awaits an
    embedding (tenant-wide: chunks from other writes to the tenant count too).
    When the embedder is unavailable the vector phase stops with a warning:
    keyword search works, vector results follow later. --no-wait skips both.
    Exits 6 when a file was refused or nothing was ingestible."""
    from cli import waiting
    from cli.ingest import IngestReport, problem, report_json
    from cli.ingest import ingest as run_ingest
    from services.platform.channels import endpoint

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    labels = _labels(label)
    as_json = wants_json(output, json_flag)
    console = _quiet_console() if as_json else _console()
    report = IngestReport()

    async def run() -> Waited | None:
        nonlocal report
        report = await run_ingest(
            paths, endpoint(settings, "document"), token_value, console, labels, quiet=as_json
        )
        if not wait or not report.sequence:
            return None
        phases = [waiting.keyword_phase(report.sequence), waiting.VECTOR]
        return await waiting.watch(
            endpoint(settings, "search"), token_value, phases, console, wait_timeout
        )

    waited = _run_and_wait(run, "")
    if as_json:
        from cli.output import print_json

        print_json({**report_json(report), "wait": _waited_json(waited)})
    if problem(report):
        raise CommandFailed(problem(report), ExitCode.REJECTED)


class _SearchGroup(DefaultCommandGroup):
    default_command = "query"


search_app = typer.Typer(
    cls=_SearchGroup,
    help=(
        'Search your documents: `protomesh search "some text" --mode vector` runs `query`'
        " (the default command); `protomesh search reindex` rebuilds the tenant's index."
    ),
    no_args_is_help=True,
)
app.add_typer(search_app, name="search")


@search_app.command("query")
def search(
    query: Annotated[str, typer.Argument(metavar="TEXT", help="What to look for.")],
    mode: Annotated[
        SearchMode, typer.Option(case_sensitive=False, help="How to rank.")
    ] = SearchMode.hybrid,
    limit: Annotated[
        int, typer.Option(min=1, max=50, metavar="N", help="Results to show (1-50).")
    ] = 10,
    label: Annotated[
        list[str], typer.Option(metavar="KEY=VALUE", help="Label filter (repeatable).")
    ] = [],  # noqa: B006
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Search your documents (hybrid keyword + vector) and show ranked, highlighted hits.
    The default: `protomesh search TEXT` is `protomesh search query TEXT`."""
    import asyncio

    from cli import search as search_cli
    from services.platform.channels import endpoint

    try:
        search_cli.parse_labels(label)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--label") from err
    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    asyncio.run(
        search_cli.search(
            endpoint(settings, "search"),
            token_value,
            query,
            _console(),
            mode.value,
            limit,
            label,
            as_json=wants_json(output, json_flag),
        )
    )


@search_app.command("reindex")
def search_reindex(
    wait: WaitOpt = True,
    wait_timeout: Annotated[
        float, _wait_timeout_opt("the rebuild continues in the background.")
    ] = 3600.0,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Rebuild the tenant's index and wait until it is done.

    Calls ReindexTenant (scope search:admin; the dev token gets it): documents made
    by an older chunker are re-chunked and every other chunk is re-embedded, in the
    background; searches keep answering from the current index meanwhile. Then
    waits, with a progress bar per phase, until no document awaits re-chunking and
    no chunk of the tenant awaits an embedding. --no-wait returns at once."""
    from cli import search as search_cli
    from cli import waiting
    from cli.output import message_dict, print_json
    from services.platform.channels import endpoint

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user, ADMIN_SCOPES)
    target = endpoint(settings, "search")
    as_json = wants_json(output, json_flag)
    console = _quiet_console() if as_json else _console()
    queued: dict[str, Any] = {}

    async def run() -> Waited | None:
        response = await search_cli.reindex(target, token_value, console, quiet=as_json)
        queued.update(message_dict(response))
        if not wait:
            return None
        phases = [waiting.REBUILD, waiting.REEMBED]
        return await waiting.watch(target, token_value, phases, console, wait_timeout)

    waited = _run_and_wait(run, "; the rebuild continues in the background")
    if as_json:
        print_json({**queued, "wait": _waited_json(waited)})


cost_app = typer.Typer(help="Spend, budgets and the price book.", no_args_is_help=True)
app.add_typer(cost_app, name="cost")


def _cost_call(
    tenant: str | None,
    user: str | None,
    data_dir: Path | None,
    call: Callable[[Any, str, Console], Coroutine[Any, Any, Any]],
) -> None:
    """Runs `call(target, token, console)` against CostService."""
    import asyncio

    from services.platform.channels import endpoint

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    asyncio.run(call(endpoint(settings, "cost"), token_value, _console()))


def _time_option(value: str | None) -> str | None:
    """Checks --from/--to before any call (a usage error, exit 2)."""
    if value is None:
        return None
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date or ISO 8601 time: {value!r}") from None
    return value


@cost_app.command("report")
def cost_report(
    by: Annotated[
        GroupBy,
        typer.Option(case_sensitive=False, help="Group by; `day` draws a bar chart."),
    ] = GroupBy.model,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="TIME",
            callback=_time_option,
            help="Start (RFC 3339 or YYYY-MM-DD); default: start of this month.",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="TIME", callback=_time_option, help="End (exclusive); default: now."
        ),
    ] = None,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Spend grouped by model, user, API key, task or day, in exact currency units;
    by day as a bar chart of spend per day."""
    from cli import cost as cost_cli

    as_json = wants_json(output, json_flag)
    _cost_call(
        tenant,
        user,
        data_dir,
        lambda target, token, console: cost_cli.report(
            target, token, console, by.value, start, end, as_json=as_json
        ),
    )


@cost_app.command("budgets")
def cost_budgets(
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """The tenant's budgets with their limits, spend this period and reservations."""
    from cli import cost as cost_cli

    as_json = wants_json(output, json_flag)
    _cost_call(
        tenant,
        user,
        data_dir,
        lambda target, token, console: cost_cli.budgets(target, token, console, as_json=as_json),
    )


@cost_app.command("prices")
def cost_prices(
    history: Annotated[bool, typer.Option(help="Include superseded price versions.")] = False,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """The price book: per-million-token prices by model."""
    from cli import cost as cost_cli

    as_json = wants_json(output, json_flag)
    _cost_call(
        tenant,
        user,
        data_dir,
        lambda target, token, console: cost_cli.prices(
            target, token, console, history, as_json=as_json
        ),
    )


tasks_app = typer.Typer(help="Inspect and control tasks.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")

TaskName = Annotated[str, typer.Argument(metavar="NAME", help="tasks/ID, or the ID alone.")]


@tasks_app.command("list")
def tasks_list(
    filter: Annotated[
        str, typer.Option(metavar="FILTER", help='AIP-160 filter, e.g. type = "rag.answer"')
    ] = "",
    state: Annotated[
        list[TaskState],
        typer.Option(
            case_sensitive=False,
            metavar="STATE",
            help="Only tasks in this state (repeatable): submitted, working, input-required, "
            "auth-required, completed, failed, canceled, rejected.",
        ),
    ] = [],  # noqa: B006
    page_size: Annotated[
        int, typer.Option(min=1, max=1000, metavar="N", help="Tasks per page (1-1000).")
    ] = 20,
    page_token: Annotated[
        str,
        typer.Option(
            metavar="TOKEN", help="Where to continue (the previous page's next page token)."
        ),
    ] = "",
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """List tasks, newest first."""
    import asyncio

    from cli import tasks as task_cli
    from services.platform.channels import endpoint

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    asyncio.run(
        task_cli.list_tasks(
            endpoint(settings, "task"),
            token_value,
            _console(),
            task_cli.state_filter(filter, [s.proto_name for s in state]),
            page_size,
            page_token,
            as_json=wants_json(output, json_flag),
        )
    )


def _task_action(
    action: str,
    name: str,
    tenant: str | None,
    user: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    import asyncio

    from cli import tasks as task_cli
    from services.platform.channels import endpoint

    if not name.strip() or name.strip() == "tasks/":
        raise typer.BadParameter("a task name (tasks/ID) or ID is required", param_hint="NAME")
    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    target = endpoint(settings, "task")
    run = {
        "show": task_cli.show,
        "watch": task_cli.watch,
        "cancel": task_cli.cancel,
        "retry": task_cli.retry,
    }[action]
    asyncio.run(run(target, token_value, name, _console(), as_json=as_json))  # type: ignore[operator]


@tasks_app.command("show")
def tasks_show(
    name: TaskName,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Show a task with its latest events."""
    _task_action("show", name, tenant, user, data_dir, wants_json(output, json_flag))


@tasks_app.command("watch")
def tasks_watch(
    name: TaskName,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Follow a task's events live until it ends (or waits for input); with
    --output json, one JSON object per line per WatchTask message."""
    _task_action("watch", name, tenant, user, data_dir, wants_json(output, json_flag))


@tasks_app.command("cancel")
def tasks_cancel(
    name: TaskName,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Cancel a task."""
    _task_action("cancel", name, tenant, user, data_dir, wants_json(output, json_flag))


@tasks_app.command("retry")
def tasks_retry(
    name: TaskName,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Re-queue a FAILED task (e.g. from the dead letter state)."""
    _task_action("retry", name, tenant, user, data_dir, wants_json(output, json_flag))


@app.command()
def status(
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Health and version of every component, index lag and task queue depth (as
    bars), spend today. Exits 1 when some component is not serving, 3 when none
    answers, 4 when the token is refused."""
    import asyncio

    from cli import status as status_cli
    from cli.errors import fail
    from cli.output import print_json

    settings = _settings(data_dir)
    found = asyncio.run(status_cli.collect(settings, _caller_token(settings, tenant, user)))
    if wants_json(output, json_flag):
        print_json(found.as_json())
    else:
        status_cli.render(found, _console())
    failure = found.failure()
    if failure is not None:
        raise fail(failure)


@app.command()
def bench(
    only: Annotated[
        list[str], typer.Option(metavar="NAME", help="Run just this bench (repeatable).")
    ] = [],  # noqa: B006
    quick: Annotated[
        bool, typer.Option(help="Smaller runs (minutes, not tens of minutes).")
    ] = False,
    output: Annotated[
        Path, typer.Option(metavar="FILE", help="Where to write the Markdown report.")
    ] = Path("docs/benchmarks.md"),
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds one bench may take.")
    ] = 1800.0,
) -> None:
    """Run the bench/ scripts one after another and write a Markdown report."""
    from cli import bench as bench_cli

    try:
        outcomes = bench_cli.run(_console(), only, quick, output, timeout)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    failed = [outcome for outcome in outcomes if outcome.result is None]
    if failed:
        raise CommandFailed(f"{len(failed)} bench(es) failed; see the report", ExitCode.FAILED)


@app.command()
def mcp(tenant: TenantOpt = None, user: UserOpt = None, data_dir: DataDir = None) -> None:
    """Serve the MCP tools over stdio (for desktop agent hosts); logs go to stderr."""
    from cli import mcp as mcp_cli

    settings = _settings(data_dir)
    mcp_cli.run(settings, _caller_token(settings, tenant, user))


@app.command("config")
def show_config(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the README's table of every setting.")
    ] = False,
    output: OutputOpt = OutputFormat.table,
    json_flag: JsonOpt = False,
) -> None:
    """List every PROTOMESH_* setting: the value in effect here, its default and meaning
    (secrets hidden). Exits 2 with every bad value named when the environment has any."""
    from services.platform.config import markdown_table, variables

    if markdown:
        print(markdown_table(), end="")
        return
    settings = _settings()
    if wants_json(output, json_flag):
        from cli.output import print_json

        print_json(
            {
                "items": [
                    {
                        "name": v.name,
                        "value": v.value_text(settings),
                        "default": v.default_text,
                        "meaning": v.doc,
                    }
                    for v in variables()
                ]
            }
        )
        return
    from rich.table import Table

    table = Table(title="configuration (environment; secrets hidden)")
    table.add_column("variable", no_wrap=True)
    for column in ("value", "default", "meaning"):
        table.add_column(column)
    for variable in variables():
        value = variable.value_text(settings)
        shown = value if value == variable.default_text else f"[bold]{value}[/bold]"
        table.add_row(variable.name, shown, variable.default_text, variable.doc)
    _console().print(table)


if __name__ == "__main__":
    app()

"""The `protomesh` command line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import grpc
import typer
from rich.console import Console
from rich.table import Table

from cli.default_group import DefaultCommandGroup
from cli.launcher import (
    SERVICES,
    start_system,
    wait_for_signal,
    with_dev_tls,
)
from services.platform.channels import endpoint
from services.platform.config import Settings, markdown_table, variables
from services.platform.embedded import EmbeddedPostgres
from services.platform.identity import KEY_FILE, ensure_dev_key, load_key, mint_token
from services.platform.migrations import migrate as run_migrations

if TYPE_CHECKING:
    from cli.waiting import Waited

app = typer.Typer(
    help="protomesh: a spec-first gRPC service mesh for AI-agent back ends.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()

DEFAULT_SCOPES = (
    "documents:read documents:write search:read tasks:read tasks:write cost:read cost:write"
)
ADMIN_SCOPES = f"{DEFAULT_SCOPES} search:admin"  # for `search reindex` only
DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Overrides PROTOMESH_DATA_DIR.", show_default=False),
]


def _settings(data_dir: Path | None = None) -> Settings:
    return Settings.from_env(data_dir=data_dir)


@app.command()
def up(
    data_dir: DataDir = None,
    workers: Annotated[
        int, typer.Option(help="Task worker coroutines per worker process (0 for none).")
    ] = 2,
    replicas: Annotated[
        int | None,
        typer.Option(
            min=1,
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
    settings = Settings.from_env(data_dir=data_dir, replicas=replicas)
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
    tenant: Annotated[str, typer.Option(help="tenant_id claim.")],
    user: Annotated[str, typer.Option(help="sub claim (user id).")] = "dev",
    scope: Annotated[str, typer.Option(help="Space-separated scopes.")] = DEFAULT_SCOPES,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
    data_dir: DataDir = None,
) -> None:
    """Print a dev token signed with the local dev key (created on first use)."""
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
        help="Tenant for the dev token [PROTOMESH_TENANT, else default].",
        show_default=False,
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user", help="User for the dev token [PROTOMESH_USER, else dev].", show_default=False
    ),
]


def _caller_token(
    settings: Settings, tenant: str | None, user: str | None, scopes: str = DEFAULT_SCOPES
) -> str:
    """`PROTOMESH_TOKEN` when set (it must carry the scopes itself), else a
    short-lived dev token with `scopes` from the local key."""
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
    question: Annotated[str, typer.Argument(help="What to ask about your documents.")],
    top_k: Annotated[int, typer.Option(help="Chunks to retrieve.")] = 5,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Ask a question (a rag.answer task) and watch the answer arrive with citations."""
    from cli import tasks as task_cli

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    asyncio.run(task_cli.ask(endpoint(settings, "task"), token_value, question, console, top_k))


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"labels are key=value, got {pair!r}")
        labels[key] = value
    return labels


def _grpc_failure(err: grpc.aio.AioRpcError) -> typer.Exit:
    console.print(f"[red]{err.code().name}[/red]: {err.details()}")
    return typer.Exit(1)


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


def _run_and_wait(run: Callable[[], Coroutine[Any, Any, Waited | None]], on_timeout: str) -> None:
    """Runs a command's `run` (its call, then the wait it asked for), ending in one
    clear line on a timeout, a refused call or an index that cannot finish now."""
    from cli.waiting import WaitTimeout, degraded_warning

    try:
        waited = asyncio.run(run())
    except WaitTimeout as err:
        console.print(f"[red]{err}{on_timeout}[/red]", soft_wrap=True)
        raise typer.Exit(1) from err
    except grpc.aio.AioRpcError as err:
        raise _grpc_failure(err) from err
    if waited is not None and not waited.complete:
        console.print(f"[yellow]{degraded_warning(waited)}[/yellow]", soft_wrap=True)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    label: Annotated[list[str], typer.Option(help="key=value label on every document.")] = [],  # noqa: B006
    wait: WaitOpt = True,
    wait_timeout: Annotated[
        float, _wait_timeout_opt("the documents stay ingested and become searchable later.")
    ] = 600.0,
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
    keyword search works, vector results follow later. --no-wait skips both."""
    from cli import waiting
    from cli.ingest import ingest as run_ingest

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)

    async def run() -> Waited | None:
        report = await run_ingest(
            paths, endpoint(settings, "document"), token_value, console, _labels(label)
        )
        if not wait or not report.sequence:
            return None
        phases = [waiting.keyword_phase(report.sequence), waiting.VECTOR]
        return await waiting.watch(
            endpoint(settings, "search"), token_value, phases, console, wait_timeout
        )

    _run_and_wait(run, "")


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
    query: Annotated[str, typer.Argument(help="What to look for.")],
    mode: Annotated[str, typer.Option(help="hybrid, keyword or vector.")] = "hybrid",
    limit: Annotated[int, typer.Option(help="Results to show (1-50).")] = 10,
    label: Annotated[list[str], typer.Option(help="key=value label filter.")] = [],  # noqa: B006
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Search your documents (hybrid keyword + vector) and show ranked, highlighted hits.
    The default: `protomesh search TEXT` is `protomesh search query TEXT`."""
    from cli import search as search_cli

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    try:
        asyncio.run(
            search_cli.search(
                endpoint(settings, "search"), token_value, query, console, mode, limit, label
            )
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    except grpc.aio.AioRpcError as err:
        raise _grpc_failure(err) from err


@search_app.command("reindex")
def search_reindex(
    wait: WaitOpt = True,
    wait_timeout: Annotated[
        float, _wait_timeout_opt("the rebuild continues in the background.")
    ] = 3600.0,
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

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user, ADMIN_SCOPES)
    target = endpoint(settings, "search")

    async def run() -> Waited | None:
        await search_cli.reindex(target, token_value, console)
        if not wait:
            return None
        phases = [waiting.REBUILD, waiting.REEMBED]
        return await waiting.watch(target, token_value, phases, console, wait_timeout)

    _run_and_wait(run, "; the rebuild continues in the background")


cost_app = typer.Typer(help="Spend, budgets and the price book.", no_args_is_help=True)
app.add_typer(cost_app, name="cost")


def _cost_call(tenant: str | None, user: str | None, data_dir: Path | None, call: Any) -> None:
    """Runs `call(target, token)` against CostService, printing gRPC failures."""
    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    try:
        asyncio.run(call(endpoint(settings, "cost"), token_value))
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    except grpc.aio.AioRpcError as err:
        raise _grpc_failure(err) from err


@cost_app.command("report")
def cost_report(
    by: Annotated[str, typer.Option(help="model, user, api-key, task or day.")] = "model",
    start: Annotated[
        str | None,
        typer.Option(
            "--from", help="Start (RFC 3339 or YYYY-MM-DD); default: start of this month."
        ),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="End (exclusive); default: now.")] = None,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Spend grouped by model, user, API key, task or day, in exact currency units."""
    from cli import cost as cost_cli

    _cost_call(
        tenant,
        user,
        data_dir,
        lambda target, token: cost_cli.report(target, token, console, by, start, end),
    )


@cost_app.command("budgets")
def cost_budgets(tenant: TenantOpt = None, user: UserOpt = None, data_dir: DataDir = None) -> None:
    """The tenant's budgets with their limits, spend this period and reservations."""
    from cli import cost as cost_cli

    _cost_call(
        tenant, user, data_dir, lambda target, token: cost_cli.budgets(target, token, console)
    )


@cost_app.command("prices")
def cost_prices(
    history: Annotated[bool, typer.Option(help="Include superseded price versions.")] = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """The price book: per-million-token prices by model."""
    from cli import cost as cost_cli

    _cost_call(
        tenant,
        user,
        data_dir,
        lambda target, token: cost_cli.prices(target, token, console, history),
    )


tasks_app = typer.Typer(help="Inspect and control tasks.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")


@tasks_app.command("list")
def tasks_list(
    filter: Annotated[
        str, typer.Option(help="AIP-160 filter, e.g. state = TASK_STATE_FAILED")
    ] = "",
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """List tasks, newest first."""
    from cli import tasks as task_cli

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    asyncio.run(task_cli.list_tasks(endpoint(settings, "task"), token_value, console, filter))


def _task_action(
    action: str, name: str, tenant: str | None, user: str | None, data_dir: Path | None
) -> None:
    from cli import tasks as task_cli

    settings = _settings(data_dir)
    token_value = _caller_token(settings, tenant, user)
    target = endpoint(settings, "task")
    run = {
        "show": task_cli.show,
        "watch": task_cli.watch,
        "cancel": task_cli.cancel,
        "retry": task_cli.retry,
    }[action]
    asyncio.run(run(target, token_value, name, console))  # type: ignore[operator]


@tasks_app.command("show")
def tasks_show(
    name: str, tenant: TenantOpt = None, user: UserOpt = None, data_dir: DataDir = None
) -> None:
    """Show a task with its latest events."""
    _task_action("show", name, tenant, user, data_dir)


@tasks_app.command("watch")
def tasks_watch(
    name: str, tenant: TenantOpt = None, user: UserOpt = None, data_dir: DataDir = None
) -> None:
    """Follow a task's events live until it ends."""
    _task_action("watch", name, tenant, user, data_dir)


@tasks_app.command("cancel")
def tasks_cancel(
    name: str, tenant: TenantOpt = None, user: UserOpt = None, data_dir: DataDir = None
) -> None:
    """Cancel a task."""
    _task_action("cancel", name, tenant, user, data_dir)


@tasks_app.command("retry")
def tasks_retry(
    name: str, tenant: TenantOpt = None, user: UserOpt = None, data_dir: DataDir = None
) -> None:
    """Re-queue a FAILED task (e.g. from the dead letter state)."""
    _task_action("retry", name, tenant, user, data_dir)


@app.command()
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    tenant: TenantOpt = None,
    user: UserOpt = None,
    data_dir: DataDir = None,
) -> None:
    """Health and version of every component, index lag, task queue depth, spend today.
    Exits 1 when something is not serving."""
    import json

    from cli import status as status_cli

    settings = _settings(data_dir)
    found = asyncio.run(status_cli.collect(settings, _caller_token(settings, tenant, user)))
    if json_output:
        print(json.dumps(found.as_json(), indent=2))
    else:
        status_cli.render(found, console)
    if not found.healthy:
        raise typer.Exit(1)


@app.command()
def bench(
    only: Annotated[list[str], typer.Option(help="Run just this bench (repeatable).")] = [],  # noqa: B006
    quick: Annotated[
        bool, typer.Option(help="Smaller runs (minutes, not tens of minutes).")
    ] = False,
    output: Annotated[Path, typer.Option(help="Where to write the Markdown report.")] = Path(
        "docs/benchmarks.md"
    ),
    timeout: Annotated[float, typer.Option(help="Seconds one bench may take.")] = 1800.0,
) -> None:
    """Run the bench/ scripts one after another and write a Markdown report."""
    from cli import bench as bench_cli

    try:
        outcomes = bench_cli.run(console, only, quick, output, timeout)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    if any(outcome.result is None for outcome in outcomes):
        raise typer.Exit(1)


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
) -> None:
    """List every PROTOMESH_* setting: the value in effect here, its default and meaning."""
    if markdown:
        print(markdown_table(), end="")
        return
    settings = _settings()
    table = Table(title="configuration (environment; secrets hidden)")
    table.add_column("variable", no_wrap=True)
    for column in ("value", "default", "meaning"):
        table.add_column(column)
    for variable in variables():
        value = variable.value_text(settings)
        shown = value if value == variable.default_text else f"[bold]{value}[/bold]"
        table.add_row(variable.name, shown, variable.default_text, variable.doc)
    console.print(table)


if __name__ == "__main__":
    app()

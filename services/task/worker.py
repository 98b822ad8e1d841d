"""The task worker process: `python -m services.task.worker --count N`.

Runs N worker slots in one process (`protomesh up` and the deploy manifests
start it) until SIGTERM/SIGINT. This module only wires the process together:
its database pool (`create_worker_pool`), a `Worker` with its store, workflows,
generator and downstream clients (`build_worker`, also for in-process use), and
the signal-driven lifecycle (`serve`, `main`). The task loop itself is
`services.task.runner`; the stubs a task calls with are `services.task.downstream`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
from collections.abc import Mapping

from services.platform import telemetry
from services.platform.clients import ServiceClients
from services.platform.config import Settings, WorkerSettings
from services.platform.db import Pool, create_pool
from services.platform.identity import ServiceIdentity
from services.platform.logs import configure_logging, get_logger
from services.platform.server import app_dsn
from services.platform.telemetry import serve_metrics
from services.task.downstream import DownstreamFactory
from services.task.generation import Generator, generator_from_settings
from services.task.runner import Worker
from services.task.store import TaskStore
from services.task.workflows import Registry, default_registry

log = get_logger("protomesh.task.worker")


async def create_worker_pool(settings: Settings, size: int) -> Pool:
    """Connections of a worker process: the application role with `app.worker = on`
    for the whole session, which the task tables' `worker_access` policies admit."""
    return await create_pool(app_dsn(settings), 1, size, server_settings={"app.worker": "on"})


async def serve(settings: Settings, config: WorkerSettings) -> None:
    """Runs a worker process until SIGTERM/SIGINT."""
    pool = await create_worker_pool(settings, max(4, config.count + 2))
    worker, clients = build_worker(pool, settings, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker.start()
    log.info("worker started", worker=worker.id, count=config.count)
    await stop.wait()
    await worker.stop()
    await clients.close()
    await pool.close()
    log.info("worker stopped", worker=worker.id)


def build_worker(
    pool: Pool,
    settings: Settings,
    config: WorkerSettings,
    generator: Generator | None = None,
    registry: Registry | None = None,
    worker_id: str = "",
) -> tuple[Worker, ServiceClients]:
    """A worker on a pool from `create_worker_pool` (also for in-process use, e.g.
    tests)."""
    identity = ServiceIdentity(settings, "task")
    clients = ServiceClients(settings, identity)
    worker = Worker(
        TaskStore(pool, worker_session=True),
        app_dsn(settings),
        registry or default_registry(),
        generator or generator_from_settings(settings.generator),
        DownstreamFactory(clients, identity),
        config,
        worker_id,
    )
    return worker, clients


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.task.worker")
    parser.add_argument(
        "--count",
        type=int,
        default=None,
        help="tasks run concurrently (PROTOMESH_TASK_CONCURRENCY)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus port of this process (default: PROTOMESH_METRICS_PORT_BASE + 4; "
        "0 for none); give each worker process on one host its own",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env(environ)
    configure_logging("task-worker", settings.log_level, settings.log_format)
    telemetry.configure_tracing("task-worker", settings)
    try:
        serve_metrics(settings, "task-worker", args.metrics_port)
    except OSError as exc:  # another worker process on this host has the port
        log.warning("metrics port taken; this worker serves no metrics", error=str(exc))
    config = settings.task_worker
    if args.count is not None:
        config = dataclasses.replace(config, count=args.count)
    asyncio.run(serve(settings, config))


if __name__ == "__main__":
    main()

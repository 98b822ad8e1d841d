"""`python -m gateway [--host H] [--port P] [--workers N]`: serve the gateway
with uvicorn (factory mode, so several worker processes each build their own app
and channels). Defaults come from `Settings.from_env()` / `PROTOMESH_GATEWAY_*`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import uvicorn

from gateway.config import GatewayConfig


def main(argv: Sequence[str] | None = None) -> None:
    from services.platform.config import Settings

    config = GatewayConfig.from_settings(Settings.from_env())
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", default=config.host)
    parser.add_argument("--port", type=int, default=config.port)
    parser.add_argument("--workers", type=int, default=config.workers)
    parser.add_argument("--log-level", default=os.environ.get("PROTOMESH_LOG_LEVEL", "info"))
    args = parser.parse_args(argv)
    # Workers re-read the environment: make the parsed flags win there too.
    os.environ["PROTOMESH_GATEWAY_HOST"] = args.host
    os.environ["PROTOMESH_GATEWAY_PORT"] = str(args.port)
    uvicorn.run(
        "gateway.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=max(1, args.workers),
        log_level=args.log_level.lower(),
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()

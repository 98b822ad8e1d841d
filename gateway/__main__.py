"""`python -m gateway`: serve the gateway with uvicorn, configured entirely by the
settings tree (`PROTOMESH_GATEWAY_*` and the service addresses; `protomesh config`
lists them). uvicorn runs in factory mode, so each of several worker processes
builds its own app and channels from the same environment."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from gateway.config import GatewayConfig
from services.platform.config import Settings


def main(argv: Sequence[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m gateway", description=__doc__).parse_args(argv)
    settings = Settings.from_env()
    config = GatewayConfig.from_settings(settings)
    uvicorn.run(
        "gateway.app:app_from_env",
        factory=True,
        **config.uvicorn_options(),
        workers=max(1, config.workers),
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()

"""The embedded server's buffer cache is sized to the machine (an eighth of its
memory, 128 MB to 1 GB), not left at PostgreSQL's 128 MB default."""

from __future__ import annotations

import asyncpg

from services.platform.embedded import shared_buffers_mb

GB = 2**30


def test_an_eighth_of_memory_between_128_mb_and_1_gb() -> None:
    assert shared_buffers_mb(24 * GB) == 1024
    assert shared_buffers_mb(4 * GB) == 512
    assert shared_buffers_mb(512 * 2**20) == 128


async def test_the_session_server_runs_with_it(postgres: str) -> None:
    conn = await asyncpg.connect(postgres)
    try:
        blocks = int(
            await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'shared_buffers'")
        )
        block_size = int(await conn.fetchval("SHOW block_size"))
    finally:
        await conn.close()

    assert blocks * block_size == shared_buffers_mb() * 2**20

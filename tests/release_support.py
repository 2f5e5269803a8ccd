"""A database built by the previous release, for the upgrade tests.

tests/fixtures/release-afe2a24.sql.gz is the pg_dump (plain SQL, PostgreSQL 15, `--no-owner
--no-privileges`) of a database that release migrated and `loyalty demo` filled; restoring it
needs `psql`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from infrastructure import Endpoints
from support import database_of_its_own, loyalty_command

RELEASE_DUMP = Path(__file__).parent / "fixtures" / "release-afe2a24.sql.gz"


@contextlib.asynccontextmanager
async def release_database(infrastructure: Endpoints) -> AsyncIterator[str]:
    """The URL of a fresh database holding what the release left, not migrated since; dropped
    after."""
    async with database_of_its_own(infrastructure.database_url, "loyalty_release") as url:
        done = await asyncio.to_thread(
            subprocess.run,
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
            input=gzip.decompress(RELEASE_DUMP.read_bytes()),
            capture_output=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()
        yield url


async def migrate(infrastructure: Endpoints, url: str, *arguments: str) -> str:
    """`loyalty migrate ARGUMENTS...`, as an operator upgrading runs it; what it printed."""
    done = await asyncio.to_thread(
        loyalty_command,
        "migrate",
        *arguments,
        env={
            "LOYALTY_DATABASE_URL": url,
            "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap,
        },
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout

"""A database built and filled by the previous release (afe2a24, `loyalty demo`), restored and
migrated by this one: what each service keeps is still there, as shop `default`."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from infrastructure import Endpoints
from support import database_of_its_own, loyalty_command

RELEASE_DUMP = Path(__file__).parents[1] / "fixtures" / "release-afe2a24.sql.gz"


def restore(url: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["psql", "--quiet", "--no-psqlrc", "--set=ON_ERROR_STOP=1", url],
        input=gzip.decompress(RELEASE_DUMP.read_bytes()),
        capture_output=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
async def release_db(infrastructure: Endpoints) -> AsyncIterator[str]:
    """The release's database restored into a database of the module's own, then migrated."""
    async with database_of_its_own(infrastructure.database_url, "loyalty_release") as url:
        restored = await asyncio.to_thread(restore, url)
        assert restored.returncode == 0, restored.stderr.decode()[-2000:]
        env = {
            "LOYALTY_DATABASE_URL": url,
            "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap,
        }
        migrated = await asyncio.to_thread(loyalty_command, "migrate", env=env, timeout=300)
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        yield url


async def test_shops_upgrade_makes_the_default_shop_and_every_service_a_directory(
    release_db: str,
) -> None:
    conn = await asyncpg.connect(release_db)
    try:
        shops = await conn.fetch("SELECT shop_id, currency FROM shops.shops")
        assert [(r["shop_id"], r["currency"]) for r in shops] == [("default", "VND")]
        # Nothing published: the default shop keeps the programme files.
        assert await conn.fetchval("SELECT count(*) FROM shops.programme_versions") == 0
        assert await conn.fetchval("SELECT count(*) FROM shops.api_keys") == 0
        for schema in ("earn", "tiering", "notify", "analytics"):
            for table in ("shop_programmes", "shop_keys"):
                assert await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}") == 0
        # The release's own rows are untouched (the demo filled earn's ledger).
        assert await conn.fetchval("SELECT count(*) FROM earn.ledger") > 0
    finally:
        await conn.close()

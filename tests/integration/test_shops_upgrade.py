"""Upgrading a database of the previous release to shops: the shop `default` exists, every
service has its (empty) shop directory tables, and the release's rows are untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from infrastructure import Endpoints
from release_support import migrate, release_database


@pytest.fixture(scope="module")
async def upgraded(infrastructure: Endpoints) -> AsyncIterator[str]:
    async with release_database(infrastructure) as url:
        await migrate(infrastructure, url)
        yield url


async def test_shops_upgrade_makes_the_default_shop_and_every_service_a_directory(
    upgraded: str,
) -> None:
    conn = await asyncpg.connect(upgraded)
    try:
        shops = await conn.fetch("SELECT shop_id, currency FROM shops.shops")
        versions = await conn.fetchval("SELECT count(*) FROM shops.programme_versions")
        keys = await conn.fetchval("SELECT count(*) FROM shops.api_keys")
        directories = {
            (schema, table): await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}")
            for schema in ("earn", "tiering", "notify", "analytics")
            for table in ("shop_programmes", "shop_keys")
        }
        ledger = await conn.fetchval("SELECT count(*) FROM earn.ledger")
    finally:
        await conn.close()
    assert [(r["shop_id"], r["currency"]) for r in shops] == [("default", "VND")]
    # Nothing published: the shop default keeps the programme files.
    assert (versions, keys) == (0, 0)
    assert set(directories.values()) == {0}
    assert ledger > 0  # the release's own rows are still there

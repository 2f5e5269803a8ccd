"""The earn benchmark's shops: made through the shops use cases, each with its earn rate in
force after the template's, every change relayed to loyalty.shops."""

from __future__ import annotations

import tomllib

import asyncpg
from infrastructure import Endpoints
from support import database_of_its_own, unique

from bench.shops import open_shops


async def test_each_shop_has_its_rate_as_the_latest_earn_version(
    infrastructure: Endpoints,
) -> None:
    async with database_of_its_own(infrastructure.database_url, "bench-shops") as database:
        # Ids of this test's own: the events go to the broker every test shares.
        prefix = f"{unique('bench')}-"
        _, in_force = await open_shops(infrastructure.kafka_bootstrap, database, 6, prefix)
        conn = await asyncpg.connect(database)
        try:
            rows = await conn.fetch(
                """SELECT shop_id, version, effective_from, toml FROM shops.programme_versions
                   WHERE kind = 'earn' ORDER BY shop_id, version"""
            )
            unrelayed = await conn.fetchval("SELECT count(*) FROM shops.outbox")
        finally:
            await conn.close()
    by_shop: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        by_shop.setdefault(row["shop_id"], []).append(row)
    assert sorted(by_shop) == [f"{prefix}{i:04d}" for i in range(6)]
    for index, shop in enumerate(sorted(by_shop)):
        template, bench = by_shop[shop]
        assert (template["version"], bench["version"]) == (1, 2)
        assert template["effective_from"] < bench["effective_from"] <= in_force
        rate = tomllib.loads(bench["toml"])["currencies"]["VND"]
        assert rate == {"per_amount": 10_000 * (1 + index % 5), "points": 1}
    assert in_force == max(rows, key=lambda r: r["effective_from"])["effective_from"]
    assert unrelayed == 0

"""Upgrading tiering on a database built by the previous release (tests/release_support.py):
every tier stays, at shop `default`, and its customers' next orders apply."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from pydantic import SecretStr
from release_support import migrate
from support import (
    TopicTail,
    encoded,
    order_paid,
    own_groups,
    running,
)

from services.tiering.bootstrap import bootstrap as tiering_bootstrap
from services.tiering.settings import TieringSettings

TIERING_TABLES = ("customers", "contributions", "parked_movements", "floors", "tier_history")
# Columns this release adds to the release's rows: the shop, and a coalition's last member shop.
ADDED = frozenset({"shop_id", "last_shop_id"})


async def tiering_rows(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of tiering's customer tables, without the columns added since, in a stable
    order."""
    rows = {}
    for table in TIERING_TABLES:
        fetched = await conn.fetch(f"SELECT * FROM tiering.{table}")
        rows[table] = sorted(
            (tuple(v for k, v in r.items() if k not in ADDED) for r in fetched), key=repr
        )
    return rows


async def test_tiering_keeps_every_tier_of_the_release_at_shop_default(
    release_database: str, infrastructure: Endpoints
) -> None:
    conn = await asyncpg.connect(release_database)
    try:
        before = await tiering_rows(conn)
        await migrate(infrastructure, release_database, "tiering")
        after = await tiering_rows(conn)
        shops = {
            t: [r["shop_id"] for r in await conn.fetch(f"SELECT DISTINCT shop_id FROM tiering.{t}")]
            for t in TIERING_TABLES
        }
        last_shops = await conn.fetchval(
            "SELECT count(*) FROM tiering.customers WHERE last_shop_id IS NOT NULL"
        )
    finally:
        await conn.close()

    assert after == before
    assert len(after["customers"]) > 100 and len(after["tier_history"]) > 50
    assert shops == {t: ["default"] for t in TIERING_TABLES}
    assert last_shops == 0  # no coalition's account among them


@pytest.mark.timeout(120)
async def test_tiering_applies_the_next_order_of_a_customer_of_the_release(
    release_database: str, infrastructure: Endpoints, producer: AIOKafkaProducer
) -> None:
    await migrate(infrastructure, release_database, "tiering")
    conn = await asyncpg.connect(release_database)
    try:
        customer = await conn.fetchval(
            """SELECT customer_id FROM tiering.customers
               WHERE tier = 'member' AND next_check_at IS NULL ORDER BY customer_id LIMIT 1"""
        )
        settings = TieringSettings(
            consumer_group_prefix=own_groups(),
            kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
            database_url=SecretStr(release_database),
            log_format="console",
            batch_timeout_ms=20,
            outbox_idle_poll_s=0.05,
        )
        app, runtime = tiering_bootstrap(settings)
        order = order_paid(customer, total="6000000")
        async with (
            TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tail,
            running(app, runtime),
        ):
            await producer.send_and_wait("shop.orders", encoded(order), key=customer.encode())
            [changed] = await tail.collect(lambda r: r.key == customer.encode(), count=1)
        rows = await conn.fetch(
            "SELECT shop_id, tier FROM tiering.customers WHERE customer_id = $1", customer
        )
        counted = await conn.fetchval(
            """SELECT shop_id FROM tiering.contributions
               WHERE customer_id = $1 AND source_key = $2""",
            customer,
            order.data.order_id,
        )
    finally:
        await conn.close()

    data = json.loads(changed.value)["data"]
    assert (data["shop_id"], data["from_tier"], data["direction"]) == ("default", "member", "up")
    assert [tuple(r) for r in rows] == [("default", data["to_tier"])]
    assert counted == "default"

"""Tiering started after a shop's tier programme was published: the catch-up of loyalty.shops
gives it the programme before its first order is applied, so the order is not dead-lettered
as of an unknown shop."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from shops_support import shops_service
from support import (
    eventually,
    order_paid,
    partitions_assigned,
    start_service_groups_at_end,
    unique,
)
from tiering_tools import publish, tiering_settings

from services.tiering.bootstrap import bootstrap
from shared.kafka_connection import KafkaConnection


async def test_an_order_queued_while_tiering_was_down_is_applied_under_its_shops_programme(
    infrastructure: Endpoints, producer: AIOKafkaProducer, db: asyncpg.Pool
) -> None:
    shop, customer = unique("late-shop"), unique("c")
    app, runtime = bootstrap(tiering_settings(infrastructure))
    # Tiering's groups exist, at the topics' ends, but tiering is not running.
    await start_service_groups_at_end(
        KafkaConnection.from_settings(runtime.settings),
        runtime.settings,
        runtime.definition.name,
        list(runtime.definition.handlers),
    )
    async with shops_service(infrastructure, shops_effective_lead_s=1) as shops:
        made = await shops.new_shop(shop, "vn-fashion")  # publishes its tier programme
        assert made["shop_id"] == shop
        # The order comes after the programme's first version has started.
        starts = await eventually(
            lambda: db.fetchval(
                "SELECT effective_from FROM shops.programme_versions"
                " WHERE shop_id = $1 AND kind = 'tiers'",
                shop,
            ),
            lambda found: found is not None,
        )
        await eventually(_now, lambda now: now > starts)
    # 6,000,000 VND: silver on the vn-fashion ladder.
    paid = order_paid(customer, total="6000000", currency="VND")
    await publish(
        producer, paid.model_copy(update={"data": paid.data.model_copy(update={"shop_id": shop})})
    )

    await app.start()
    try:
        await partitions_assigned(runtime)
        tiered = await eventually(
            lambda: db.fetch(
                "SELECT shop_id, tier FROM tiering.customers WHERE customer_id = $1", customer
            ),
            lambda rows: len(rows) == 1,
        )
    finally:
        await app.stop()

    # A dead-lettered order would have left no standing at all.
    assert [(r["shop_id"], r["tier"]) for r in tiered] == [(shop, "silver")]


async def _now() -> datetime:
    return datetime.now(UTC)

"""Earn learns tiers from loyalty.tiers and multiplies the points of orders paid afterwards."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer
from support import eventually, order_paid, unique
from tiering_tools import TieringService, publish

from shared.runtime import Runtime


async def test_earn_applies_the_new_tier_multiplier_to_the_next_order(
    earn: Runtime, tiering: TieringService, db: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    crossing = order_paid(customer, total="5000000")
    await publish(producer, crossing)
    tiers = await eventually(
        lambda: db.fetch(
            "SELECT tier, multiplier, effective_at FROM earn.customer_tiers WHERE customer_id = $1",
            customer,
        ),
        lambda rows: len(rows) == 1,
    )
    await publish(producer, order_paid(customer, total="259000"))
    entries = await eventually(
        lambda: db.fetch(
            "SELECT delta FROM earn.ledger WHERE customer_id = $1 ORDER BY seq", customer
        ),
        lambda rows: len(rows) == 2,
    )

    assert (tiers[0]["tier"], str(tiers[0]["multiplier"])) == ("silver", "1.25")
    assert tiers[0]["effective_at"] == crossing.time
    # The crossing order was paid at the old tier: base points. The next one: 25 x 1.25 = 31.
    assert [e["delta"] for e in entries] == [500, 31]

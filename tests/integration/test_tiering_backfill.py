"""Backfill: replaying every order gives the tiers live processing gave; a rerun is a no-op."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import (
    TopicTail,
    eventually,
    order_cancelled,
    order_paid,
    order_refunded,
    unique,
)
from tiering_tools import TieringService, body, loyalty, net_total, publish

STATE = """SELECT customer_id, tier, earned_tier, review_at, below_since, source_offset
           FROM tiering.customers WHERE customer_id = ANY($1::text[]) ORDER BY customer_id"""
SOURCES = """SELECT customer_id, source_key, unit, day, added, removed, closed
             FROM tiering.contributions WHERE customer_id = ANY($1::text[])
             ORDER BY customer_id, source_key"""


async def snapshot(db: asyncpg.Pool, customers: list[str]) -> tuple[list[Any], list[Any]]:
    return (
        [dict(r) for r in await db.fetch(STATE, customers)],
        [dict(r) for r in await db.fetch(SOURCES, customers)],
    )


async def test_backfill_replay_gives_the_same_tiers_as_live_processing(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    gold, silver, cancelled, early_refund, late_refund = (
        unique(p) for p in ("gold", "silv", "canc", "early", "late")
    )
    customers = [gold, silver, cancelled, early_refund, late_refund]
    big = order_paid(silver, total="7000000")
    dropped = order_paid(cancelled, total="9000000")
    late = order_paid(early_refund, total="6000000")
    later = order_paid(late_refund, total="6000000")
    # Both refunds come before their orders; one is dated before its order, one after.
    before = late.time - timedelta(minutes=1)
    after = later.time + timedelta(minutes=1)
    await publish(
        producer,
        order_paid(gold, total="6000000"),
        order_paid(gold, total="12000000"),
        big,
        order_refunded(silver, big.data.order_id, amount="1500000"),
        dropped,
        order_refunded(cancelled, dropped.data.order_id, amount="1000000"),
        order_cancelled(cancelled, dropped.data.order_id),
        order_refunded(early_refund, late.data.order_id, amount="2000000", at=before),
        late,
        order_refunded(late_refund, later.data.order_id, amount="2000000", at=after),
        later,
    )
    expected = {
        gold: 18_000_000,
        silver: 5_500_000,
        cancelled: 0,
        early_refund: 4_000_000,
        late_refund: 4_000_000,
    }
    for customer, total in expected.items():

        def reached(t: Any, total: int = total) -> bool:
            return bool(t == total)

        await eventually(partial(net_total, db, customer), reached)

    # The cancelled order's net is 0 before any of its events is applied, too: wait until
    # all three are (its 9,000,000 added, and all of it removed again).
    async def added(customer: str) -> Any:
        return await db.fetchval(
            "SELECT coalesce(sum(added), 0) FROM tiering.contributions WHERE customer_id = $1",
            customer,
        )

    await eventually(partial(added, cancelled), lambda total: total == 9_000_000)
    await eventually(partial(net_total, db, cancelled), lambda total: total == 0)
    live = await snapshot(db, customers)
    only = [arg for c in customers for arg in ("--customer", c)]

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        first = await loyalty("tiering", "backfill", "--no-progress", *only)
        second = await loyalty("tiering", "backfill", "--no-progress", *only)
        published = await tiers.settle(lambda r: r.key.decode() in customers, seconds=2)

    assert [s["tier"] for s in live[0]] == ["silver", "member", "gold", "silver", "silver"]
    assert await snapshot(db, customers) == live
    assert published == []
    assert "5 customer(s) recomputed, 0 tier(s) changed" in first
    assert "5 customer(s) recomputed, 0 tier(s) changed" in second


async def test_backfill_restores_lost_state_and_publishes_only_the_difference(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customer = unique("c")
    await publish(producer, order_paid(customer, total="16000000"))
    await eventually(lambda: net_total(db, customer), lambda t: t == 16_000_000)
    await db.execute("DELETE FROM tiering.contributions WHERE customer_id = $1", customer)
    await db.execute(
        "UPDATE tiering.customers SET tier = 'member', earned_tier = 'member', review_at = NULL"
        " WHERE customer_id = $1",
        customer,
    )

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        first = await loyalty("tiering", "backfill", "--no-progress", "--customer", customer)
        [restored] = await tiers.collect(lambda r: r.key == customer.encode(), count=1)
        second = await loyalty("tiering", "backfill", "--no-progress", "--customer", customer)
        again = await tiers.settle(lambda r: r.key == customer.encode(), seconds=2)

    change = body(restored)["data"]
    assert (change["from_tier"], change["to_tier"], change["reason"]) == (
        "member",
        "gold",
        "backfill",
    )
    assert change["qualifying_amount"] == "16000000"
    assert await net_total(db, customer) == 16_000_000
    assert "1 tier(s) changed" in first
    assert "0 tier(s) changed" in second
    assert again == []

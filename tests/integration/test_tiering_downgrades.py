"""Downgrades wait for the scheduled evaluation, which is safe to run from several processes."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import (
    TopicTail,
    eventually,
    order_paid,
    order_refunded,
    unique,
)
from tiering_tools import TieringService, body, loyalty, net_total, publish, tier_row

SHOP = ZoneInfo("Asia/Ho_Chi_Minh")


def review_after(paid_at: datetime) -> datetime:
    """The shipped programme reviews a tier 365 local days after the day it was reached."""
    day = paid_at.astimezone(SHOP).date() + timedelta(days=365)
    return datetime(day.year, day.month, day.day, tzinfo=SHOP).astimezone(UTC)


async def evaluate(at: datetime, customer: str) -> None:
    await loyalty("tiering", "evaluate", "--at", at.isoformat(), "--customer", customer)


async def test_refund_below_keep_changes_nothing_until_the_evaluation_at_the_end_of_the_period(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customer = unique("c")
    mine = lambda record: record.key == customer.encode()  # noqa: E731
    paid = order_paid(customer, total="6000000")

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        await publish(producer, paid)
        [silver] = await tiers.collect(mine, count=1)
        await publish(producer, order_refunded(customer, paid.data.order_id, amount="3000000"))
        await eventually(lambda: net_total(db, customer), lambda total: total == 3_000_000)
        after_refund = await tiers.settle(mine, seconds=1.5)
        review_at = review_after(paid.time)
        await loyalty(
            "tiering",
            "evaluate",
            "--at",
            (review_at - timedelta(days=60)).isoformat(),
            "--customer",
            customer,
        )
        early = await tiers.settle(mine, seconds=1.5)
        await loyalty(
            "tiering",
            "evaluate",
            "--at",
            (review_at - timedelta(days=10)).isoformat(),
            "--customer",
            customer,
        )
        [warning] = await tiers.collect(mine, count=1)
        await loyalty("tiering", "evaluate", "--at", review_at.isoformat(), "--customer", customer)
        [downgrade] = await tiers.collect(mine, count=1)

    assert body(silver)["data"]["to_tier"] == "silver"
    assert after_refund == []
    assert early == []
    at_risk = body(warning)
    assert at_risk["type"] == "tier.at_risk"
    assert at_risk["data"]["tier"] == "silver"
    assert at_risk["data"]["needed_amount"] == "1000000"
    assert datetime.fromisoformat(at_risk["data"]["deadline"]) == review_at
    changed = body(downgrade)["data"]
    assert (changed["from_tier"], changed["to_tier"], changed["direction"]) == (
        "silver",
        "member",
        "down",
    )
    assert changed["reason"] == "period_review"
    assert changed["qualifying_amount"] == "3000000"
    assert datetime.fromisoformat(changed["effective_at"]) == review_at
    row = await tier_row(db, customer)
    assert row is not None
    assert (row["tier"], row["earned_tier"], row["review_at"]) == ("member", "member", None)


async def test_a_kept_tier_is_reviewed_again_a_period_later(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customer = unique("c")
    mine = lambda record: record.key == customer.encode()  # noqa: E731
    paid = order_paid(customer, total="6000000")

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        await publish(producer, paid)
        await tiers.collect(mine, count=1)
        review_at = review_after(paid.time)
        await evaluate(review_at, customer)
        kept = await tiers.settle(mine, seconds=1.5)

    row = await tier_row(db, customer)
    assert kept == []
    assert row is not None
    assert row["tier"] == "silver"
    assert row["review_at"] == review_after(review_at)


async def test_two_evaluations_at_once_apply_each_downgrade_exactly_once(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customers = [unique("c") for _ in range(12)]
    keys = {c.encode() for c in customers}
    paid = [order_paid(c, total="5000000") for c in customers]
    mine = lambda record: record.key in keys  # noqa: E731
    env = {**os.environ, "LOYALTY_TIERING_EVALUATION_CHUNK": "2"}

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        await publish(producer, *paid)
        await tiers.collect(mine, count=len(customers))
        for c in customers:
            await publish(producer, order_refunded(c, paid[customers.index(c)].data.order_id))
        for c in customers:
            await eventually(partial(net_total, db, c), lambda total: total == 0)
        at = max(review_after(p.time) for p in paid).isoformat()
        only = [arg for c in customers for arg in ("--customer", c)]
        await asyncio.gather(
            loyalty("tiering", "evaluate", "--at", at, *only, env=env),
            loyalty("tiering", "evaluate", "--at", at, *only, env=env),
        )
        changes = await tiers.collect(mine, count=len(customers))
        changes += await tiers.settle(mine, seconds=2)

    downgrades = [body(r) for r in changes if body(r)["type"] == "tier.changed"]
    assert sorted(d["subject"] for d in downgrades) == sorted(customers)
    assert {d["data"]["to_tier"] for d in downgrades} == {"member"}
    rows = await db.fetch(
        "SELECT customer_id, count(*) AS n FROM tiering.tier_history"
        " WHERE customer_id = ANY($1::text[]) AND direction = 'down' GROUP BY customer_id",
        customers,
    )
    assert {r["customer_id"]: r["n"] for r in rows} == dict.fromkeys(customers, 1)
    assert Decimal(0) == await net_total(db, customers[0])

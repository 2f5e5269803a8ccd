"""Tiers on the real broker and database: upgrades at once, exactly one event per change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import (
    TopicTail,
    encoded,
    eventually,
    order_cancelled,
    order_paid,
    order_refunded,
    unique,
)
from tiering_tools import TieringService, body, net_total, publish, tier_row

from shared.events import CloudEvent


async def send(producer: AIOKafkaProducer, event: CloudEvent[Any]) -> None:
    await producer.send_and_wait("shop.orders", encoded(event), key=event.subject.encode())


async def contributions(db: asyncpg.Pool, customer: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM tiering.contributions WHERE customer_id = $1", customer
        )
    )


async def test_orders_crossing_silver_then_gold_emit_exactly_two_tier_changed_events(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customer = unique("c")
    mine = lambda record: record.key == customer.encode()  # noqa: E731

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        await send(producer, order_paid(customer, total="3000000"))
        await send(producer, order_paid(customer, total="2500000"))
        silver = await tiers.collect(mine, count=1)
        await send(producer, order_paid(customer, total="10000000"))
        gold = await tiers.collect(mine, count=1)
        await send(producer, order_paid(customer, total="1000000"))
        await eventually(lambda: contributions(db, customer), lambda n: n == 4)
        later = await tiers.settle(mine, seconds=2)

    assert later == []
    up_to_silver, up_to_gold = (json.loads(r.value) for r in (*silver, *gold))
    assert up_to_silver["type"] == up_to_gold["type"] == "tier.changed"
    assert (up_to_silver["data"]["from_tier"], up_to_silver["data"]["to_tier"]) == (
        "member",
        "silver",
    )
    assert up_to_silver["data"]["qualifying_amount"] == "5500000"
    assert up_to_silver["data"]["currency"] == "VND"
    assert up_to_silver["data"]["multiplier"] == "1.25"
    assert up_to_silver["data"]["reason"] == "qualified"
    assert up_to_gold["data"]["direction"] == "up"
    assert (up_to_gold["data"]["from_tier"], up_to_gold["data"]["to_tier"]) == ("silver", "gold")
    assert up_to_gold["data"]["qualifying_amount"] == "15500000"
    history = await db.fetch(
        "SELECT to_tier FROM tiering.tier_history WHERE customer_id = $1 ORDER BY seq", customer
    )
    assert [h["to_tier"] for h in history] == ["silver", "gold"]
    metrics = (await tiering.api.get("/metrics")).text
    gold_series = 'loyalty_tier_changes_total{direction="up",service="tiering",tier="gold"}'
    [counted] = [line for line in metrics.splitlines() if line.startswith(gold_series)]
    assert float(counted.split()[-1]) >= 1


async def closed_orders(db: asyncpg.Pool, customers: list[str]) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM tiering.contributions"
            " WHERE customer_id = ANY($1::text[]) AND closed",
            customers,
        )
    )


async def history(db: asyncpg.Pool, customer: str) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT from_tier, to_tier, reason, qualifying_amount, effective_at"
        " FROM tiering.tier_history WHERE customer_id = $1 ORDER BY seq",
        customer,
    )
    return [tuple(row) for row in rows]


async def test_refunds_and_cancellations_delivered_before_their_payment_give_the_same_tier(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    natural, reversed_ = unique("c"), unique("c")
    paid_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)

    def order_of(customer: str) -> list[Any]:
        paid = order_paid(customer, total="6000000", at=paid_at)
        order_id = paid.data.order_id
        refunded_at, cancelled_at = paid_at + timedelta(minutes=10), paid_at + timedelta(hours=1)
        refunded = order_refunded(customer, order_id, amount="1000000", at=refunded_at)
        return [paid, refunded, order_cancelled(customer, order_id, at=cancelled_at)]

    ours = (natural.encode(), reversed_.encode())
    mine = lambda record: record.key in ours  # noqa: E731
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        await publish(producer, *order_of(natural))
        await publish(producer, *reversed(order_of(reversed_)))
        await eventually(lambda: closed_orders(db, [natural, reversed_]), lambda n: n == 2)
        published = await tiers.settle(mine, seconds=3)

    def change(customer: str) -> list[tuple[Any, ...]]:
        fields = ("from_tier", "to_tier", "reason", "qualifying_amount", "effective_at")
        data = [body(r)["data"] for r in published if r.key == customer.encode()]
        return [tuple(d[f] for f in fields) for d in data]

    assert change(reversed_) == change(natural)
    [(from_tier, to_tier, reason, amount, effective_at)] = change(natural)
    assert (from_tier, to_tier, reason, amount) == ("member", "silver", "qualified", "6000000")
    assert datetime.fromisoformat(effective_at) == paid_at
    assert await history(db, reversed_) == await history(db, natural)
    assert await net_total(db, reversed_) == await net_total(db, natural) == 0
    rows = [await tier_row(db, c) for c in (natural, reversed_)]
    assert [(r["tier"], r["earned_tier"]) for r in rows if r is not None] == [
        ("silver", "silver")
    ] * 2

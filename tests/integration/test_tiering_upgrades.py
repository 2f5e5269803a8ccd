"""Tiers on the real broker and database: upgrades at once, exactly one event per change."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_paid, unique
from tiering_tools import TieringService

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

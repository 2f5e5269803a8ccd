"""Tiering refuses an order dated ahead of its clock, between neighbours on one partition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_paid, unique
from tiering_tools import TieringService


async def contributions(db: asyncpg.Pool, customer: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM tiering.contributions WHERE customer_id = $1", customer
        )
    )


async def test_an_order_two_days_ahead_of_the_clock_is_dead_lettered_and_neighbours_applied(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    before, ahead, after = unique("before"), unique("ahead"), unique("after")
    # The session's tiering runs on the system clock: the event is dated from it.
    early = order_paid(ahead, at=datetime.now(UTC) + timedelta(days=2))

    def by_tiering(record: Any) -> bool:
        headers = dict(record.headers)
        return headers.get("x-dlq-service") == b"tiering" and record.key == ahead.encode()

    async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders.dlq") as dlq:
        for event in (order_paid(before), early, order_paid(after)):
            value, key = encoded(event), event.subject.encode()
            await producer.send_and_wait("shop.orders", value, key=key, partition=0)
        [dead] = await dlq.collect(by_tiering, count=1)

    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-dlq-error-class"] == "TimeAhead"
    assert "ahead of this service's clock" in headers["x-dlq-error-message"]
    for neighbour in (before, after):
        await eventually(partial(contributions, db, neighbour), lambda count: count == 1)
    assert await contributions(db, ahead) == 0

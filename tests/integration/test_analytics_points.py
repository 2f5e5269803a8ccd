"""Analytics counts points, not store credit: cashback entries share loyalty.points but are
money in minor units, and would swell points issued and the liability."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from support import encoded, eventually, unique

from shared.events import PointsEarned, make_event


def earned(customer: str, delta: int, **credit: Any) -> Any:
    data = PointsEarned(
        entry_id=unique("e"),
        customer_id=customer,
        delta=delta,
        balance_after=delta,
        reason="cashback" if credit else "order.paid",
        **credit,
    )
    return make_event(
        "points.earned", source="tests/earn", subject=customer, data=data, time=datetime.now(UTC)
    )


async def test_store_credit_entries_make_a_member_but_no_points(
    analytics: httpx.AsyncClient, db: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    credit = earned(customer, 2590, balance_kind="store_credit", currency="VND")
    points = earned(customer, 25)
    for event in (credit, points):  # one partition: the points entry comes second
        await producer.send_and_wait("loyalty.points", encoded(event), key=customer.encode())

    rows = await eventually(
        lambda: db.fetch(
            "SELECT entry_id, delta FROM analytics.points WHERE customer_id = $1", customer
        ),
        lambda found: len(found) == 1,
    )

    assert [(r["entry_id"], r["delta"]) for r in rows] == [(points.data.entry_id, 25)]
    assert (
        await db.fetchval("SELECT count(*) FROM analytics.members WHERE customer_id = $1", customer)
        == 1
    )

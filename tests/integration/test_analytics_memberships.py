"""Analytics keeps paid memberships, and ends one early when its order is cancelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from support import encoded, eventually, membership_cancelled, membership_purchased, unique


async def test_a_cancelled_membership_ends_at_its_cancellation(
    analytics: httpx.AsyncClient, db: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    starts_at = datetime.now(UTC) - timedelta(days=3)
    ends_at = starts_at + timedelta(days=365)
    purchase = membership_purchased(customer, "gold", starts_at=starts_at, ends_at=ends_at)
    cancelled_at = starts_at + timedelta(days=2)
    cancellation = membership_cancelled(purchase, at=cancelled_at)
    for event in (purchase, cancellation, cancellation):  # one partition, in this order
        await producer.send_and_wait("loyalty.memberships", encoded(event), key=customer.encode())

    rows = await eventually(
        lambda: db.fetch(
            "SELECT tier, starts_at, ends_at FROM analytics.memberships WHERE customer_id = $1",
            customer,
        ),
        lambda found: len(found) == 1 and found[0]["ends_at"] != ends_at,
    )

    assert [(r["tier"], r["starts_at"], r["ends_at"]) for r in rows] == [
        ("gold", starts_at, cancelled_at)
    ]

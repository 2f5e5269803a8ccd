"""SIGKILL earn in the middle of a stream: after a restart, every event counted exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg
from aiokafka import AIOKafkaProducer
from support import encoded, eventually, order_paid, unique

from shared.infrastructure import Endpoints


async def test_sigkill_mid_stream_then_restart_ends_with_exactly_one_entry_per_event(
    infrastructure: Endpoints, spawn: type
) -> None:
    customers = [unique("k") for _ in range(25)]
    events = [order_paid(customers[i % 25], total="12", currency="USD") for i in range(1000)]
    expected = Counter(e.subject for e in events)
    db = await asyncpg.connect(infrastructure.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    await producer.start()

    async def committed() -> int:
        return int(
            await db.fetchval(
                "SELECT count(*) FROM earn.ledger WHERE customer_id = ANY($1::text[])", customers
            )
        )

    async def stream() -> None:
        # About four seconds of traffic, so the kill lands in the middle of it.
        for i, event in enumerate(events):
            await producer.send("shop.orders", encoded(event), key=event.subject.encode())
            if i % 25 == 24:
                await asyncio.sleep(0.1)
        await producer.flush()

    try:
        earn = spawn("earn", 18101).start()
        sending = asyncio.create_task(stream())
        await eventually(committed, lambda n: n >= 150, timeout=60, interval=0.02)
        earn.kill()
        killed_at = await committed()
        await sending
        spawn("earn", 18101).start()
        await eventually(committed, lambda n: n >= 1000, timeout=120)
        await asyncio.sleep(2)  # anything extra (a duplicate) would land now
        total = await committed()
        rows = await db.fetch(
            """SELECT l.customer_id, count(*) AS n, sum(l.delta) AS points, a.points_balance
               FROM earn.ledger l JOIN earn.accounts a USING (customer_id)
               WHERE l.customer_id = ANY($1::text[])
               GROUP BY l.customer_id, a.points_balance""",
            customers,
        )
    finally:
        await producer.stop()
        await db.close()

    assert 0 < killed_at < 1000
    assert total == 1000
    for row in rows:
        assert row["n"] == expected[row["customer_id"]]
        assert row["points"] == row["points_balance"] == 12 * expected[row["customer_id"]]

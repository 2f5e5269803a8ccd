"""Stopping earn in the middle of a stream, by SIGKILL or SIGTERM, loses and doubles nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import encoded, eventually, order_paid, unique

# Small batches, so that the stop lands between commits rather than after one large batch.
SMALL_BATCHES = ("LOYALTY_BATCH_MAX_RECORDS", "20")


@dataclass
class Stream:
    """A stream of order.paid events for a few customers, and how to count their entries."""

    db: asyncpg.Connection
    producer: AIOKafkaProducer
    customers: list[str]
    size: int

    async def committed(self) -> int:
        return int(
            await self.db.fetchval(
                "SELECT count(*) FROM earn.ledger WHERE customer_id = ANY($1::text[])",
                self.customers,
            )
        )

    async def warm_up(self) -> None:
        """Wait until earn consumes (it has its partitions), so the stream meets a live consumer."""
        probe = unique("warm")
        await self.producer.send_and_wait(
            "shop.orders", encoded(order_paid(probe, total="1", currency="USD")), key=probe.encode()
        )
        await eventually(
            lambda: self.db.fetchval(
                "SELECT count(*) FROM earn.ledger WHERE customer_id = $1", probe
            ),
            lambda n: n == 1,
            timeout=60,
        )

    async def send(self) -> Counter[str]:
        """About four seconds of traffic, so a stop lands in the middle of it."""
        events = [
            order_paid(self.customers[i % len(self.customers)], total="12", currency="USD")
            for i in range(self.size)
        ]
        for i, event in enumerate(events):
            await self.producer.send("shop.orders", encoded(event), key=event.subject.encode())
            if i % 25 == 24:
                await asyncio.sleep(0.1)
        await self.producer.flush()
        return Counter(e.subject for e in events)

    async def ledger_by_customer(self) -> list[asyncpg.Record]:
        return await self.db.fetch(
            """SELECT l.customer_id, count(*) AS n, sum(l.delta) AS points, a.points_balance
               FROM earn.ledger l JOIN earn.accounts a USING (customer_id)
               WHERE l.customer_id = ANY($1::text[])
               GROUP BY l.customer_id, a.points_balance""",
            self.customers,
        )


@pytest.fixture
async def stream(infrastructure: Endpoints) -> AsyncIterator[Stream]:
    db = await asyncpg.connect(infrastructure.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield Stream(db, producer, [unique("k") for _ in range(25)], 1000)
    finally:
        await producer.stop()
        await db.close()


async def test_sigkill_mid_stream_then_restart_ends_with_exactly_one_entry_per_event(
    stream: Stream, spawn: type
) -> None:
    earn = spawn("earn", None, SMALL_BATCHES).start()
    await stream.warm_up()
    sending = asyncio.create_task(stream.send())
    await eventually(stream.committed, lambda n: n >= 150, timeout=60, interval=0.02)
    earn.kill()
    killed_at = await stream.committed()
    expected = await sending
    spawn("earn", earn.port, SMALL_BATCHES).start()
    await eventually(stream.committed, lambda n: n >= stream.size, timeout=120)
    await asyncio.sleep(2)  # anything extra (a duplicate) would land now

    assert 0 < killed_at < stream.size
    assert await stream.committed() == stream.size
    for row in await stream.ledger_by_customer():
        assert row["n"] == expected[row["customer_id"]]
        assert row["points"] == row["points_balance"] == 12 * expected[row["customer_id"]]


async def test_sigterm_mid_stream_stops_cleanly_and_a_restart_completes_the_stream(
    stream: Stream, spawn: type
) -> None:
    earn = spawn("earn", None, SMALL_BATCHES).start()
    await stream.warm_up()
    sending = asyncio.create_task(stream.send())
    await eventually(stream.committed, lambda n: n >= 150, timeout=60, interval=0.02)
    exit_code = await asyncio.to_thread(earn.stop)
    stopped_at = await stream.committed()
    expected = await sending
    spawn("earn", earn.port, SMALL_BATCHES).start()
    await eventually(stream.committed, lambda n: n >= stream.size, timeout=120)
    await asyncio.sleep(2)

    assert exit_code == 0
    assert "service_stopped" in earn.log_path.read_text()
    assert 0 < stopped_at < stream.size
    assert await stream.committed() == stream.size
    for row in await stream.ledger_by_customer():
        assert row["points"] == row["points_balance"] == 12 * expected[row["customer_id"]]

"""How the batch consumer lives through failures, on the real broker and database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from support import consumer_record, database_of_its_own, encoded, order_paid, unique

from shared.clock import SystemClock
from shared.consumer import BatchConsumer, Incoming, Rejection
from shared.db import apply_migrations
from shared.infrastructure import Endpoints
from shared.runtime import MESSAGING_MIGRATIONS

SCHEMA = "messaging_test"


@pytest.fixture
async def own_database(infrastructure: Endpoints) -> AsyncIterator[str]:
    """A database of the test's own, with the inbox and outbox tables: closing it to
    connections touches nobody else."""
    async with database_of_its_own(infrastructure.database_url, "outage") as url:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn, SCHEMA, [("messaging", MESSAGING_MIGRATIONS)])
        finally:
            await conn.close()
        yield url


async def test_a_database_refusing_connections_for_a_while_delays_a_batch_and_loses_nothing(
    infrastructure: Endpoints, own_database: str
) -> None:
    """While the database does not accept connections (ALLOW_CONNECTIONS false, its
    backends ended), the batch is retried with backoff and applied once it opens again."""
    name = own_database.rsplit("/", 1)[1]
    applied: list[str] = []

    async def handler(conn: asyncpg.Connection, events: Sequence[Incoming]) -> list[Rejection]:
        applied.extend(e.inbox_key for e in events)
        return []

    pool = await asyncpg.create_pool(own_database, min_size=1, max_size=2)
    admin = await asyncpg.connect(infrastructure.database_url)
    try:
        consumer = BatchConsumer(
            service="test", schema=SCHEMA, topic="shop.orders", handler=handler,
            clock=SystemClock(), max_backoff_s=0.5,
        )  # fmt: skip
        consumer.bind(pool, lambda: None)
        event = order_paid(unique("c"))
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        processing = asyncio.create_task(consumer.process([consumer_record(encoded(event))]))
        await asyncio.sleep(3)
        assert not processing.done()  # still trying, neither given up nor given back
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        await asyncio.wait_for(processing, 30)
    finally:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        await admin.close()
        await pool.close()

    assert applied == [event.id]

"""How the batch consumer lives through failures, on the real broker and database."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import structlog
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import (
    TopicTail,
    consumer_record,
    database_of_its_own,
    encoded,
    eventually,
    order_paid,
    unique,
)

from shared.broker import make_broker, subscribe_batches
from shared.clock import SystemClock
from shared.consumer import SPLIT_FROM, BatchConsumer, Incoming, Rejection
from shared.db import Connection, apply_migrations
from shared.errors import Bug
from shared.outbox import OutboxRelay
from shared.runtime import MESSAGING_MIGRATIONS
from shared.settings import CommonSettings
from shared.topics import ensure_topics, start_group_at_end

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
    name = urlsplit(own_database).path.lstrip("/")  # the URL may end in ?sslmode=...
    applied: list[str] = []

    async def handler(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
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


@pytest.fixture
async def scratch_schema(db: asyncpg.Pool) -> AsyncIterator[str]:
    """A schema of its own with the inbox and outbox tables and a table the handlers write."""
    schema = unique("t").replace("-", "_")
    async with db.acquire() as conn:
        await apply_migrations(conn, schema, [("messaging", MESSAGING_MIGRATIONS)])
        await conn.execute(f"CREATE TABLE {schema}.applied (event_id text PRIMARY KEY, note text)")
    try:
        yield schema
    finally:
        await db.execute(f"DROP SCHEMA {schema} CASCADE")


def writing_handler(schema: str, poison: set[bytes]) -> Any:
    """A handler that stores a note per event from JSON: the poison customers' notes hold
    U+0000, which PostgreSQL cannot convert to text (SQLSTATE 22P05) however often it tries."""

    async def handler(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        rows = [
            (e.inbox_key, json.dumps({"note": "\u0000" if e.key in poison else "ok"}))
            for e in events
        ]
        await conn.executemany(
            f"INSERT INTO {schema}.applied VALUES ($1, ($2::jsonb) ->> 'note')", rows
        )
        return []

    return handler


def orders(count: int, partitions: int) -> tuple[list[Any], list[Any]]:
    events = [order_paid(unique("c")) for _ in range(count)]
    records = [
        consumer_record(
            encoded(e), partition=n % partitions, offset=500 + n, key=e.subject.encode()
        )
        for n, e in enumerate(events)
    ]
    return events, records


async def applied_ids(db: asyncpg.Pool, schema: str) -> list[str]:
    return sorted(r["event_id"] for r in await db.fetch(f"SELECT event_id FROM {schema}.applied"))


@pytest.mark.parametrize(("count", "parallel"), [(12, 1), (SPLIT_FROM, 4)], ids=["small", "split"])
async def test_a_record_postgresql_refuses_is_dead_lettered_and_its_neighbours_applied(
    db: asyncpg.Pool, scratch_schema: str, count: int, parallel: int
) -> None:
    """Its neighbours in its partition and in the others are applied once; the record is
    dead-lettered with PostgreSQL's error, and the batch is not handed back."""
    events, records = orders(count, partitions=3)
    poison = events[4]
    consumer = BatchConsumer(
        service="test", schema=scratch_schema, topic="shop.orders",
        handler=writing_handler(scratch_schema, {poison.subject.encode()}), clock=SystemClock(),
        parallel=parallel,
    )  # fmt: skip
    consumer.bind(db, lambda: None)

    await consumer.process(records)
    await consumer.process(records)  # redelivered: nothing applied or dead-lettered twice

    assert await applied_ids(db, scratch_schema) == sorted(e.id for e in events if e != poison)
    letters = await db.fetch(f"SELECT topics, payloads FROM {scratch_schema}.outbox")
    assert [(r["topics"], r["payloads"]) for r in letters] == [
        (["shop.orders.dlq"], [encoded(poison)])
    ]


async def test_the_refused_record_reaches_the_dead_letter_topic_with_its_reason(
    db: asyncpg.Pool, scratch_schema: str, infrastructure: Endpoints
) -> None:
    events, records = orders(6, partitions=2)
    poison = events[3]
    consumer = BatchConsumer(
        service="test", schema=scratch_schema, topic="shop.orders",
        handler=writing_handler(scratch_schema, {poison.subject.encode()}), clock=SystemClock(),
    )  # fmt: skip
    consumer.bind(db, lambda: None)
    relay = OutboxRelay(
        pool=db, schema=scratch_schema, kafka=infrastructure.kafka_bootstrap,
        service="test", idle_poll_s=0.05,
    )  # fmt: skip
    await ensure_topics(infrastructure.kafka_bootstrap, ["shop.orders.dlq"], partitions=4)
    async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders.dlq") as tail:
        await consumer.process(records)
        await relay.start()
        try:
            seen = await tail.collect(lambda r: r.key == poison.subject.encode(), count=1)
        finally:
            await relay.stop()

    headers = dict(seen[0].headers)
    assert seen[0].value == encoded(poison)
    assert headers["x-dlq-error-class"] == b"UntranslatableCharacterError"
    assert headers["x-dlq-error-message"].startswith(b"SQLSTATE 22P05: ")
    assert (headers["x-dlq-partition"], headers["x-dlq-offset"]) == (b"1", b"503")
    assert len(await applied_ids(db, scratch_schema)) == 5


async def test_a_bug_only_one_record_meets_dead_letters_it_and_applies_the_rest(
    db: asyncpg.Pool, scratch_schema: str
) -> None:
    events, records = orders(8, partitions=2)
    bad = events[6]

    async def handler(conn: Connection, batch: Sequence[Incoming]) -> list[Rejection]:
        if any(e.inbox_key == bad.id for e in batch):
            raise KeyError("tier")
        await conn.executemany(
            f"INSERT INTO {scratch_schema}.applied VALUES ($1, 'ok')",
            [(e.inbox_key,) for e in batch],
        )
        return []

    consumer = BatchConsumer(
        service="test", schema=scratch_schema, topic="shop.orders", handler=handler,
        clock=SystemClock(),
    )  # fmt: skip
    consumer.bind(db, lambda: None)

    await consumer.process(records)

    assert await applied_ids(db, scratch_schema) == sorted(e.id for e in events if e != bad)
    classes = await db.fetchval(f"SELECT header_values FROM {scratch_schema}.outbox")
    assert b"KeyError" in classes


async def test_a_bug_every_record_meets_hands_the_batch_back_after_a_growing_wait(
    db: asyncpg.Pool, scratch_schema: str
) -> None:
    """Nothing is dead-lettered for a fault that is not in the data; each time the batch is
    handed back the consumer waits longer (capped), and logs the same failure once."""
    attempts = 0

    async def handler(conn: Connection, batch: Sequence[Incoming]) -> list[Rejection]:
        nonlocal attempts
        attempts += 1
        raise Bug("broken on every path")

    _, records = orders(64, partitions=2)
    consumer = BatchConsumer(
        service="test", schema=scratch_schema, topic="shop.orders", handler=handler,
        clock=SystemClock(), max_backoff_s=0.8,
    )  # fmt: skip
    consumer.bind(db, lambda: None)

    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        for _ in range(4):
            with pytest.raises(Bug):
                await consumer.process(records)
    waited = time.monotonic() - started

    # Waits of at least 0.05, 0.1, 0.2 and 0.4 s: doubling from 0.1 s, with jitter.
    assert waited >= 0.75

    given_back = [e for e in logs if e["event"] == "batch_given_back"]
    assert len(given_back) == 1  # the same failure again within the window is only counted
    assert given_back[0]["error_class"] == "Bug"
    assert given_back[0]["exc_info"] is not None
    assert attempts <= 4 * ((64).bit_length() + 6)  # no bisection down to every record
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.outbox") == 0
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.inbox") == 0


async def test_a_batch_handed_back_through_the_subscriber_comes_again_and_is_applied(
    db: asyncpg.Pool, scratch_schema: str, infrastructure: Endpoints
) -> None:
    """The subscriber nacks a batch the consumer hands back (the partition is sought back to
    it) instead of letting the error through FastStream, and the batch comes again."""
    event = order_paid(unique("c"))
    calls = 0

    async def handler(conn: Connection, batch: Sequence[Incoming]) -> list[Rejection]:
        nonlocal calls
        mine = [e for e in batch if e.inbox_key == event.id]
        if mine:
            calls += 1
            if calls == 1:
                raise Bug("fails the first time")
        await conn.executemany(
            f"INSERT INTO {scratch_schema}.applied VALUES ($1, 'ok')",
            [(e.inbox_key,) for e in mine],
        )
        return []

    group = unique("test-handback")
    settings = CommonSettings(kafka_bootstrap_servers=infrastructure.kafka_bootstrap)
    await start_group_at_end(infrastructure.kafka_bootstrap, group, ["shop.orders"])
    broker = make_broker(settings, "test")
    consumer = BatchConsumer(
        service="test", schema=scratch_schema, topic="shop.orders", handler=handler,
        clock=SystemClock(),
    )  # fmt: skip
    consumer.bind(db, lambda: None)
    subscribe_batches(broker, consumer, group_id=group, max_records=100, batch_timeout_ms=20)
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap)
    await broker.start()
    await producer.start()
    try:
        await producer.send_and_wait("shop.orders", encoded(event), key=event.subject.encode())
        applied = await eventually(lambda: applied_ids(db, scratch_schema), bool)
    finally:
        await producer.stop()
        await broker.stop()

    assert applied == [event.id]
    assert calls == 2

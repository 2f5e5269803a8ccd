"""Inbox, outbox relay and migrations on the real database and broker."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import RecordTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from infrastructure import Endpoints
from support import TopicTail, consumer_record, encoded, eventually, order_paid, unique

from shared.clock import SystemClock
from shared.consumer import SPLIT_FROM, BatchConsumer, Incoming, Rejection
from shared.db import Connection, apply_migrations
from shared.errors import Bug
from shared.events import STRUCTURED_HEADER
from shared.outbox import OutboxMessage, OutboxRelay, enqueue
from shared.pruning import Prunable, count_older, prune
from shared.runtime import MESSAGING_MIGRATIONS
from shared.topics import ensure_topics

# A topic of the tests' own: relaying test bytes to a real topic would feed them to the services.
RELAY_TOPIC = "tests.outbox-relay"


@pytest.fixture
async def scratch_schema(db: asyncpg.Pool) -> AsyncIterator[str]:
    """A schema of its own with the inbox and outbox tables, dropped afterwards."""
    schema = unique("t").replace("-", "_")
    async with db.acquire() as conn:
        await apply_migrations(conn, schema, [("messaging", MESSAGING_MIGRATIONS)])
    try:
        yield schema
    finally:
        await db.execute(f"DROP SCHEMA {schema} CASCADE")


def consumer_for(db: asyncpg.Pool, schema: str, handler: Any, **options: Any) -> BatchConsumer:
    """A consumer of shop.orders into the scratch schema, bound to the tests' pool."""
    consumer = BatchConsumer(
        service="test", schema=schema, topic="shop.orders", handler=handler,
        clock=SystemClock(), **options,
    )  # fmt: skip
    consumer.bind(db, lambda: None)
    return consumer


def relay_for(
    db: asyncpg.Pool, schema: str, infrastructure: Endpoints, **options: Any
) -> OutboxRelay:
    """A relay of the scratch schema's outbox to the tests' broker, polling every 50 ms."""
    return OutboxRelay(
        pool=db,
        schema=schema,
        kafka=infrastructure.kafka_bootstrap,
        service="test",
        idle_poll_s=0.05,
        **options,
    )


async def test_two_relays_publish_every_outbox_row_exactly_once(
    db: asyncpg.Pool, scratch_schema: str, infrastructure: Endpoints
) -> None:
    marker = unique("relay").encode()
    for first in range(0, 2000, 40):  # 50 outbox rows of 40 messages; a pass takes 3 of them
        async with db.acquire() as conn, conn.transaction():
            await enqueue(
                conn,
                scratch_schema,
                [OutboxMessage(RELAY_TOPIC, marker, b"%d" % i) for i in range(first, first + 40)],
            )
    relays = [relay_for(db, scratch_schema, infrastructure, batch_size=100) for _ in range(2)]
    await ensure_topics(infrastructure.kafka_bootstrap, [RELAY_TOPIC], partitions=4)
    async with TopicTail(infrastructure.kafka_bootstrap, RELAY_TOPIC) as tail:
        for relay in relays:
            await relay.start()
        seen = await tail.collect(lambda r: r.key == marker, count=2000, timeout=60)
        for relay in relays:
            await relay.stop()
        await asyncio.sleep(0.5)
        seen += await tail.collect(lambda r: r.key == marker, count=0, timeout=1)

    values = sorted(int(r.value) for r in seen)
    assert values == list(range(2000))
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.outbox") == 0


async def test_the_relay_keeps_each_keys_records_in_order_on_the_keys_partition(
    db: asyncpg.Pool, scratch_schema: str, infrastructure: Endpoints
) -> None:
    """Records of one key go to the partition the producer's own partitioner gives that key,
    in outbox order, also when a partition's records fill more than one record batch."""
    keys = [unique(f"order-{n}").encode() for n in range(6)]
    filler = b"x" * 30_000  # a producer batch holds 256 KiB: several batches per partition
    messages = [
        OutboxMessage(RELAY_TOPIC, keys[i % len(keys)], b"%d:" % i + filler) for i in range(120)
    ]
    async with db.acquire() as conn, conn.transaction():
        await enqueue(conn, scratch_schema, messages)
    # The payloads are stored compressed with LZ4 (messaging migration 0005); the records
    # below come back byte for byte.
    compression = f"SELECT pg_column_compression(payloads) FROM {scratch_schema}.outbox"
    assert await db.fetchval(compression) == "lz4"
    relay = relay_for(db, scratch_schema, infrastructure)
    await ensure_topics(infrastructure.kafka_bootstrap, [RELAY_TOPIC], partitions=4)
    async with TopicTail(infrastructure.kafka_bootstrap, RELAY_TOPIC) as tail:
        await relay.start()
        try:
            seen = await tail.collect(lambda r: r.key in keys, count=120, timeout=60)
        finally:
            await relay.stop()

    partitioner = DefaultPartitioner()
    for key in keys:
        mine = [r for r in seen if r.key == key]
        assert {r.partition for r in mine} == {partitioner(key, [0, 1, 2, 3], [0, 1, 2, 3])}
        assert [r.value for r in mine] == [m.value for m in messages if m.key == key]
        assert [r.offset for r in mine] == sorted(r.offset for r in mine)
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.outbox") == 0


async def test_a_relay_that_fails_unexpectedly_keeps_the_rows_and_recovers_on_its_own(
    db: asyncpg.Pool, scratch_schema: str, infrastructure: Endpoints
) -> None:
    marker = unique("relay").encode()
    refusals = 3

    # aiokafka ships no type information, so to mypy its producer is Any.
    class RefusingAtFirst(AIOKafkaProducer):  # type: ignore[misc]
        """The real producer, refusing the first sends with an error no retry rule foresees."""

        async def send_batch(self, *args: Any, **kwargs: Any) -> Any:
            nonlocal refusals
            if refusals > 0:
                refusals -= 1
                raise RecordTooLargeError("refused by the test")
            return await super().send_batch(*args, **kwargs)

    async with db.acquire() as conn, conn.transaction():
        await enqueue(
            conn, scratch_schema, [OutboxMessage(RELAY_TOPIC, marker, b"%d" % i) for i in range(5)]
        )
    relay = relay_for(
        db,
        scratch_schema,
        infrastructure,
        producer_factory=lambda: RefusingAtFirst(bootstrap_servers=infrastructure.kafka_bootstrap),
    )
    await ensure_topics(infrastructure.kafka_bootstrap, [RELAY_TOPIC], partitions=4)
    async with TopicTail(infrastructure.kafka_bootstrap, RELAY_TOPIC) as tail:
        await relay.start()
        try:
            await eventually(lambda: asyncio.sleep(0, relay.failed), bool, interval=0.01)
            seen = await tail.collect(lambda r: r.key == marker, count=5, timeout=60)
            healed = await eventually(lambda: asyncio.sleep(0, relay.failed), lambda f: not f)
        finally:
            await relay.stop()

    assert refusals == 0
    assert sorted(int(r.value) for r in seen) == [0, 1, 2, 3, 4]
    assert healed is False
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.outbox") == 0


async def test_a_record_refused_at_a_position_does_not_hide_another_record_there_later(
    db: asyncpg.Pool, scratch_schema: str
) -> None:
    """Offsets start again when a topic is created anew or the cluster is replaced, while the
    database keeps its inbox: a new record at a refused record's position is still applied."""
    applied: list[str] = []

    async def handler(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        applied.extend(e.inbox_key for e in events)
        return []

    consumer = BatchConsumer(
        service="test", schema=scratch_schema, topic="shop.orders", handler=handler,
        clock=SystemClock(),
    )  # fmt: skip
    consumer.bind(db, lambda: None)
    garbage = consumer_record(b"\x00not json", partition=2, offset=41)
    event = order_paid(unique("c"))
    later = consumer_record(encoded(event), partition=2, offset=41)

    await consumer.process([garbage])
    await consumer.process([garbage])  # redelivered: still refused only once
    await consumer.process([later])

    assert applied == [event.id]
    dead_letters = await db.fetchval(
        f"SELECT sum(cardinality(topics)) FROM {scratch_schema}.outbox"
    )
    assert dead_letters == 1


async def test_batch_survives_a_lost_database_connection_and_applies_once(
    db: asyncpg.Pool, scratch_schema: str
) -> None:
    calls = 0

    async def handler(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        nonlocal calls
        calls += 1
        if calls == 1:
            # A real connection loss in the middle of the transaction.
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return []

    consumer = BatchConsumer(
        service="test",
        schema=scratch_schema,
        topic="shop.orders",
        handler=handler,
        clock=SystemClock(),
        max_backoff_s=0.2,
    )
    consumer.bind(db, lambda: None)
    record = consumer_record(encoded(order_paid(unique("c"))))

    await consumer.process([record])
    await consumer.process([record])  # redelivered after the commit: a duplicate

    assert calls == 2
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.inbox") == 1


async def test_a_batchs_partitions_apply_at_once_and_a_failed_one_is_applied_on_redelivery(
    db: asyncpg.Pool, scratch_schema: str
) -> None:
    """Each partition of a batch commits on its own connection, at the same time as the others;
    when one fails on every record the batch is handed back, and its redelivery applies only
    what is missing."""
    applied: list[str] = []
    together = asyncio.Barrier(3)
    waited: set[int] = set()
    broken = True

    async def handler(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        if events[0].partition not in waited:
            waited.add(events[0].partition)
            await asyncio.wait_for(together.wait(), 10)  # all three transactions are open
        if broken and events[0].partition == 1:
            raise Bug("partition 1 fails")
        applied.extend(e.inbox_key for e in events)
        return []

    consumer = consumer_for(db, scratch_schema, handler, parallel=4)
    events = [order_paid(unique("c")) for _ in range(SPLIT_FROM)]  # a batch large enough
    batch = [
        consumer_record(encoded(e), partition=n % 3, offset=100 + n) for n, e in enumerate(events)
    ]

    with pytest.raises(Bug):
        await consumer.process(batch)
    assert sorted(applied) == sorted(e.id for n, e in enumerate(events) if n % 3 != 1)
    broken = False
    await consumer.process(batch)  # handed back: the whole batch comes again

    assert sorted(applied) == sorted(e.id for e in events)
    inbox = await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.inbox")
    assert inbox == SPLIT_FROM


async def test_a_services_consumers_share_their_budget_of_open_transactions(
    db: asyncpg.Pool, scratch_schema: str
) -> None:
    """Two consumers behind at once, each splitting its batch by partition, never hold more
    transactions together than their shared budget (the rest of the pool stays free)."""
    open_now = most = 0

    async def handler(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        await asyncio.sleep(0.05)
        open_now -= 1
        return []

    budget = asyncio.Semaphore(2)
    consumers = [  # as the consumers of two topics of one service
        consumer_for(db, scratch_schema, handler, parallel=4, transactions=budget) for _ in range(2)
    ]
    batches = [
        [
            consumer_record(encoded(order_paid(unique("c"))), partition=n % 4, offset=n)
            for n in range(SPLIT_FROM)
        ]
        for _ in consumers
    ]

    await asyncio.gather(*(c.process(b) for c, b in zip(consumers, batches, strict=True)))

    assert most == 2
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.inbox") == 2 * SPLIT_FROM


async def test_a_small_batch_is_applied_in_one_transaction(
    db: asyncpg.Pool, scratch_schema: str
) -> None:
    """A consumer that keeps up gets small batches: one commit for all their partitions."""
    transactions: list[list[int]] = []

    async def handler(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        transactions.append(sorted({e.partition for e in events}))
        return []

    consumer = consumer_for(db, scratch_schema, handler, parallel=4)
    batch = [
        consumer_record(encoded(order_paid(unique("c"))), partition=n % 3, offset=n)
        for n in range(SPLIT_FROM - 1)
    ]

    await consumer.process(batch)

    assert transactions == [[0, 1, 2]]


async def test_pruning_deletes_only_inbox_rows_older_than_the_window(
    db: asyncpg.Pool, scratch_schema: str
) -> None:
    now = datetime.now(UTC)
    ages = [40, 35, 31, 31, 30.9, 29, 1, 0]  # days
    await db.executemany(
        f"INSERT INTO {scratch_schema}.inbox (event_id, topic, received_at) VALUES ($1, 't', $2)",
        [(f"e{n}", now - timedelta(days=age)) for n, age in enumerate(ages)],
    )
    target = Prunable(scratch_schema, "inbox", "received_at")
    before = now - timedelta(days=30)
    steps: list[int] = []

    assert await count_older(db, target, before) == 5
    deleted = await prune(db, target, before, chunk=2, progress=steps.append)

    assert deleted == 5
    assert steps == [2, 2, 1]  # two rows per transaction
    kept = await db.fetch(f"SELECT event_id FROM {scratch_schema}.inbox ORDER BY event_id")
    assert [r["event_id"] for r in kept] == ["e5", "e6", "e7"]


async def test_migrations_apply_once_and_refuse_an_edited_file(
    db: asyncpg.Pool, scratch_schema: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    components = [("messaging", MESSAGING_MIGRATIONS), ("demo", tmp_path)]
    async with db.acquire() as conn:
        first = await apply_migrations(conn, scratch_schema, components)
        second = await apply_migrations(conn, scratch_schema, components)
        (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id bigint);")
        with pytest.raises(Bug, match="changed after it was applied"):
            await apply_migrations(conn, scratch_schema, components)

    assert first == ["demo/0001_things.sql"]
    assert second == []


async def test_contract_parts_wait_until_asked_for_and_then_apply_in_order(
    db: asyncpg.Pool, scratch_schema: str, tmp_path: Path
) -> None:
    """A rolling upgrade: the expand parts run while the previous release still needs the old
    key; the contract parts run later, once, in the order of their files."""
    (tmp_path / "0001_things.sql").write_text(
        "CREATE TABLE things (id text PRIMARY KEY);\nINSERT INTO things VALUES ('a');\n"
    )
    (tmp_path / "0002_things_by_shop.sql").write_text(
        "ALTER TABLE things ADD COLUMN shop text NOT NULL DEFAULT 'default';\n"
        "CREATE UNIQUE INDEX things_by_shop ON things (shop, id);\n"
        "-- contract\n"
        "ALTER TABLE things DROP CONSTRAINT things_pkey;\n"
    )
    (tmp_path / "0003_more.sql").write_text("CREATE TABLE more (id int);\n")
    components = [("demo", tmp_path)]
    async with db.acquire() as conn:
        expanded = await apply_migrations(conn, scratch_schema, components, contract=False)
        # The previous release's write, which names the old key, still works.
        await conn.execute(
            f"INSERT INTO {scratch_schema}.things (id) VALUES ('a') ON CONFLICT (id) DO NOTHING"
        )
        again = await apply_migrations(conn, scratch_schema, components, contract=False)
        contracted = await apply_migrations(conn, scratch_schema, components)
        await conn.execute(f"INSERT INTO {scratch_schema}.things VALUES ('a', 'acme')")
        last = await apply_migrations(conn, scratch_schema, components)
        rows = await conn.fetch(f"SELECT shop, id FROM {scratch_schema}.things ORDER BY shop")

    assert expanded == [
        "demo/0001_things.sql",
        "demo/0002_things_by_shop.sql",
        "demo/0003_more.sql",
    ]
    assert again == []
    assert contracted == ["demo/0002_things_by_shop.sql (contract)"]
    assert last == []
    assert [(r["shop"], r["id"]) for r in rows] == [("acme", "a"), ("default", "a")]


async def test_a_fresh_schema_gets_expand_and_contract_parts_at_once(
    db: asyncpg.Pool, scratch_schema: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_things.sql").write_text(
        "CREATE TABLE things (id int);\n-- contract\nALTER TABLE things ADD COLUMN n int;\n"
    )
    async with db.acquire() as conn:
        applied = await apply_migrations(conn, scratch_schema, [("demo", tmp_path)])
        columns = await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = 'things'",
            scratch_schema,
        )

    assert applied == ["demo/0001_things.sql", "demo/0001_things.sql (contract)"]
    assert columns == 2


async def test_rows_waiting_in_the_outbox_before_it_held_batches_are_relayed_after_it(
    db: asyncpg.Pool, infrastructure: Endpoints, tmp_path: Path
) -> None:
    """An outbox of one row per message (migration 0001) with rows still waiting: after the
    migration to rows of many messages, the relay publishes them in order, headers kept."""
    shutil.copy(MESSAGING_MIGRATIONS / "0001_inbox_outbox.sql", tmp_path)
    schema = unique("t").replace("-", "_")
    marker = unique("old").encode()
    try:
        async with db.acquire() as conn:
            await apply_migrations(conn, schema, [("messaging", tmp_path)])
            await conn.executemany(
                f"""INSERT INTO {schema}.outbox (topic, key, value, header_names, header_values)
                    VALUES ($1, $2, $3, $4, $5)""",
                [
                    (RELAY_TOPIC, marker, b"%d" % i, ["correlation-id"], [b"c-%d" % i])
                    for i in range(3)
                ]
                + [(RELAY_TOPIC, marker, b"3", [], [])],
            )
            applied = await apply_migrations(conn, schema, [("messaging", MESSAGING_MIGRATIONS)])
        relay = relay_for(db, schema, infrastructure)
        await ensure_topics(infrastructure.kafka_bootstrap, [RELAY_TOPIC], partitions=4)
        async with TopicTail(infrastructure.kafka_bootstrap, RELAY_TOPIC) as tail:
            await relay.start()
            try:
                seen = await tail.collect(lambda r: r.key == marker, count=4, timeout=60)
            finally:
                await relay.stop()
        left = await db.fetchval(f"SELECT count(*) FROM {schema}.outbox")
    finally:
        await db.execute(f"DROP SCHEMA {schema} CASCADE")

    assert applied[0] == "messaging/0002_outbox_batches.sql"
    assert [r.value for r in seen] == [b"0", b"1", b"2", b"3"]
    assert [list(r.headers) for r in seen] == [
        [STRUCTURED_HEADER, ("correlation-id", b"c-0")],
        [STRUCTURED_HEADER, ("correlation-id", b"c-1")],
        [STRUCTURED_HEADER, ("correlation-id", b"c-2")],
        [STRUCTURED_HEADER],
    ]
    assert left == 0


async def test_a_relay_passes_over_rows_another_relay_holds(
    db: asyncpg.Pool, scratch_schema: str, infrastructure: Endpoints
) -> None:
    """Rows that another relay's pass has locked are skipped, not counted against the pass:
    the rows after them go out meanwhile, and the held ones once they are let go."""
    marker = unique("held").encode()
    for row in range(3):
        async with db.acquire() as conn, conn.transaction():
            await enqueue(
                conn,
                scratch_schema,
                [OutboxMessage(RELAY_TOPIC, marker, b"%d-%d" % (row, i)) for i in range(40)],
            )
    relay = relay_for(db, scratch_schema, infrastructure, batch_size=40)
    await ensure_topics(infrastructure.kafka_bootstrap, [RELAY_TOPIC], partitions=4)
    async with TopicTail(infrastructure.kafka_bootstrap, RELAY_TOPIC) as tail:
        async with db.acquire() as holder, holder.transaction():
            await holder.execute(
                f"""SELECT id FROM {scratch_schema}.outbox ORDER BY id LIMIT 1
                    FOR UPDATE"""
            )
            await relay.start()
            while_held = await tail.collect(lambda r: r.key == marker, count=80, timeout=30)
        after = await tail.collect(lambda r: r.key == marker, count=40, timeout=30)
        await relay.stop()

    assert sorted(r.value.split(b"-")[0] for r in while_held) == [b"1"] * 40 + [b"2"] * 40
    assert {r.value.split(b"-")[0] for r in after} == {b"0"}
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.outbox") == 0

"""The console's index of dead letters on the real broker and database: two consoles copy each
record once, one pass at a time, forget what Kafka no longer has, and the operations page shows
what the index holds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from console_support import console_service, signed_in
from infrastructure import Endpoints
from support import eventually, unique

from services.console.dead_letter_index import LOCK_KEY, ROUNDS
from services.console.domain.roles import Role
from shared.runtime import Runtime


@asynccontextmanager
async def dlq_topic_of_its_own(
    kafka: str, partitions: int
) -> AsyncIterator[tuple[str, AIOKafkaAdminClient]]:
    topic = f"{unique('index')}.dlq"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
        yield topic, admin
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def dead_letter(producer: AIOKafkaProducer, topic: str, partition: int, shop: str) -> None:
    body = json.dumps({"specversion": "1.0", "data": {"shop_id": shop}}).encode()
    headers = [("x-dlq-error-class", b"NoEarnRate"), ("x-dlq-service", b"earn")]
    await producer.send_and_wait(topic, body, partition=partition, headers=headers)


async def rows_of(pool: asyncpg.Pool, topic: str) -> list[tuple[int, int, str]]:
    rows = await pool.fetch(
        """SELECT partition, "offset", shop_id FROM console.dead_letters WHERE dlq_topic = $1
           ORDER BY partition, "offset" """,
        topic,
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def rounds(*runtimes: Runtime) -> list[int]:
    """The indexer's rounds each console finished, passes skipped for the lock included."""
    return [r.rounds.get(ROUNDS, 0) for r in runtimes]


async def test_two_consoles_index_each_dead_letter_once_one_pass_at_a_time(
    infrastructure: Endpoints, producer: AIOKafkaProducer
) -> None:
    shop = unique("index")
    async with (
        dlq_topic_of_its_own(infrastructure.kafka_bootstrap, partitions=2) as (topic, admin),
        console_service(infrastructure, console_dead_letters_index_s=0.2) as one,
        console_service(infrastructure, console_dead_letters_index_s=0.2) as two,
    ):
        for partition in (0, 0, 0, 1, 1, 1):
            await dead_letter(producer, topic, partition, shop)
        first = await eventually(lambda: rows_of(one.pool, topic), lambda rows: len(rows) == 6)
        # A pass holding the lock (here, the test's transaction): the others skip their turn.
        async with one.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            await dead_letter(producer, topic, 0, shop)
            await dead_letter(producer, topic, 1, shop)
            before = await rounds(one.runtime, two.runtime)
            await eventually(
                lambda: rounds(one.runtime, two.runtime),
                lambda now: all(n >= b + 3 for n, b in zip(now, before, strict=True)),
                timeout=30,
            )
            while_locked = await rows_of(one.pool, topic)
        after = await eventually(lambda: rows_of(two.pool, topic), lambda rows: len(rows) == 8)
        await eventually(lambda: rounds(one.runtime, two.runtime), lambda n: min(n) > 0)
        # Records gone from Kafka (expired, here deleted) leave the index: replay cannot find them.
        await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(before_offset=2)})
        pruned = await eventually(lambda: rows_of(one.pool, topic), lambda rows: len(rows) == 6)
        offsets = await one.pool.fetch(
            """SELECT partition, next_offset FROM console.dead_letter_offsets
               WHERE dlq_topic = $1 ORDER BY partition""",
            topic,
        )
        await one.pool.execute("DELETE FROM console.dead_letters WHERE dlq_topic = $1", topic)
        await one.pool.execute(
            "DELETE FROM console.dead_letter_offsets WHERE dlq_topic = $1", topic
        )

    assert first == [(p, o, shop) for p in (0, 1) for o in (0, 1, 2)]
    assert while_locked == first
    assert after == [(p, o, shop) for p in (0, 1) for o in (0, 1, 2, 3)]
    assert pruned == [(0, 2, shop), (0, 3, shop)] + [(1, o, shop) for o in (0, 1, 2, 3)]
    assert [(r[0], r[1]) for r in offsets] == [(0, 4), (1, 4)]


async def test_the_operations_page_shows_the_index_not_kafka(infrastructure: Endpoints) -> None:
    shop, other = unique("index"), unique("index")
    # Partition 97 of shop.orders.dlq does not exist on the broker: only the index has these.
    at = datetime(2026, 3, 1, 3, 15, tzinfo=UTC)
    rows = [
        ("shop.orders.dlq", 97, 1, shop, "NoEarnRate", "no earn rate for EUR"),
        ("shop.orders.dlq", 97, 2, other, "UnknownShop", "their shop"),
    ]
    async with console_service(infrastructure, console_dead_letters_index_s=3600) as console:
        # After the indexer's first pass: the rest of the test has the index to itself.
        await eventually(lambda: rounds(console.runtime), lambda n: n[0] > 0)
        await console.pool.executemany(
            """INSERT INTO console.dead_letters (dlq_topic, partition, "offset", record_timestamp,
                   shop_id, topic, service, error_class, error_message, dead_lettered_at, key)
               VALUES ($1, $2, $3, 0, $4, 'shop.orders', 'earn', $5, $6, $7, NULL)""",
            [(*row, at) for row in rows],
        )
        owner = await console.make_user({shop: Role.OWNER}, locale="en")
        try:
            async with console.client() as client:
                await signed_in(client, owner)
                page = await client.get(f"/shops/{shop}/operations")
                filtered = await client.get(
                    f"/shops/{shop}/operations", params={"error_class": "UnknownShop"}
                )
        finally:
            await console.pool.execute(
                "DELETE FROM console.dead_letters WHERE partition = 97 AND shop_id = ANY($1)",
                [shop, other],
            )

    assert page.status_code == 200
    assert "shop.orders.dlq/97/1" in page.text
    assert "no earn rate for EUR" in page.text
    assert "shop.orders.dlq/97/2" not in page.text
    assert "UnknownShop" not in page.text
    assert "shop.orders.dlq/97/1" not in filtered.text
    assert "No dead letters." in filtered.text

"""A record as large as its topic takes, dead-lettered and relayed, on the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from infrastructure import Endpoints
from support import TopicTail, unique

from shared.clock import SystemClock
from shared.consumer import BatchConsumer, Incoming, Rejection
from shared.db import Connection, apply_migrations
from shared.outbox import OutboxMessage, OutboxRelay, enqueue
from shared.runtime import MESSAGING_MIGRATIONS
from shared.topics import DLQ_HEADROOM_BYTES, MAX_MESSAGE_BYTES, dlq, ensure_topics

# Just under what a topic takes by default (1,048,588 bytes of record batch).
NEAR_THE_LIMIT = 1_048_489


@pytest.fixture
async def scratch_schema(db: asyncpg.Pool) -> AsyncIterator[str]:
    schema = unique("t").replace("-", "_")
    async with db.acquire() as conn:
        await apply_migrations(conn, schema, [("messaging", MESSAGING_MIGRATIONS)])
    try:
        yield schema
    finally:
        await db.execute(f"DROP SCHEMA {schema} CASCADE")


async def max_message_bytes(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    entries = response.resources[0][4]
    return int(next(e[1] for e in entries if e[0] == MAX_MESSAGE_BYTES))


async def test_dead_letter_topics_take_their_sources_largest_records_and_old_ones_are_raised(
    infrastructure: Endpoints,
) -> None:
    bootstrap = infrastructure.kafka_bootstrap
    fresh, old = unique("tests.fresh"), unique("tests.old")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # a dead-letter topic created before, with the default limit and a setting of its own
        await admin.create_topics(
            [
                NewTopic(old, 1, 1),
                NewTopic(dlq(old), 1, 1, topic_configs={"retention.ms": "86400000"}),
            ]
        )
    finally:
        await admin.close()

    await ensure_topics(bootstrap, [fresh, dlq(fresh), old, dlq(old)], partitions=1)

    for source in (fresh, old):
        needed = await max_message_bytes(bootstrap, source) + DLQ_HEADROOM_BYTES
        assert await max_message_bytes(bootstrap, dlq(source)) == needed


async def test_a_record_near_the_topics_limit_is_dead_lettered_and_relayed_with_its_neighbours(
    db: asyncpg.Pool, scratch_schema: str, infrastructure: Endpoints
) -> None:
    """A real ~1 MB record that is not JSON, read from a real topic: its dead letter (the bytes
    plus x-dlq headers) reaches the dead-letter topic, and the outbox rows around it are
    published exactly once."""
    bootstrap = infrastructure.kafka_bootstrap
    source, neighbours_topic = unique("tests.big"), unique("tests.neighbours")
    await ensure_topics(bootstrap, [source, dlq(source), neighbours_topic], partitions=1)
    big = b"\xff" + b"x" * (NEAR_THE_LIMIT - 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=2 * NEAR_THE_LIMIT)
    async with TopicTail(bootstrap, source) as tail:
        await producer.start()
        try:
            await producer.send_and_wait(source, big, key=b"c-big")
        finally:
            await producer.stop()
        (record,) = await tail.collect(lambda r: r.key == b"c-big", count=1)

    async def never_called(conn: Connection, batch: Sequence[Incoming]) -> list[Rejection]:
        raise AssertionError("no record parses: the handler is never called")

    consumer = BatchConsumer(
        service="test",
        schema=scratch_schema,
        topic=source,
        handler=never_called,
        clock=SystemClock(),
    )
    consumer.bind(db, lambda: None)
    async with db.acquire() as conn, conn.transaction():
        await enqueue(conn, scratch_schema, [OutboxMessage(neighbours_topic, b"n", b"before")])
    await consumer.process([record])
    async with db.acquire() as conn, conn.transaction():
        await enqueue(conn, scratch_schema, [OutboxMessage(neighbours_topic, b"n", b"after")])

    relay = OutboxRelay(
        pool=db, schema=scratch_schema, kafka=bootstrap, service="test",
        idle_poll_s=0.05,
    )  # fmt: skip
    async with (
        TopicTail(bootstrap, dlq(source)) as letters,
        TopicTail(bootstrap, neighbours_topic) as neighbours,
    ):
        await relay.start()
        try:
            (letter,) = await letters.collect(lambda r: True, count=1)
            seen = await neighbours.collect(lambda r: True, count=2)
            seen += await neighbours.settle(lambda r: True, seconds=1)
        finally:
            await relay.stop()

    assert letter.value == big
    assert dict(letter.headers)["x-dlq-topic"] == source.encode()
    assert sorted(r.value for r in seen) == [b"after", b"before"]
    assert not relay.failed
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.outbox") == 0


async def test_a_row_the_broker_can_never_take_is_set_aside_and_the_others_go_once(
    db: asyncpg.Pool, scratch_schema: str, infrastructure: Endpoints
) -> None:
    bootstrap = infrastructure.kafka_bootstrap
    topic = unique("tests.small")
    await ensure_topics(bootstrap, [topic], partitions=1)
    too_large = b"y" * (2 * NEAR_THE_LIMIT)  # over the topic's limit whatever is done
    for value in (b"first", too_large, b"last"):
        async with db.acquire() as conn, conn.transaction():
            await enqueue(conn, scratch_schema, [OutboxMessage(topic, b"k", value)])
    relay = OutboxRelay(
        pool=db, schema=scratch_schema, kafka=bootstrap, service="test",
        idle_poll_s=0.05,
    )  # fmt: skip
    async with TopicTail(bootstrap, topic) as tail:
        await relay.start()
        try:
            seen = await tail.collect(lambda r: True, count=2)
            seen += await tail.settle(lambda r: True, seconds=2)
        finally:
            await relay.stop()

    assert sorted(r.value for r in seen) == [b"first", b"last"]
    parked = await db.fetch(f"SELECT payloads, error FROM {scratch_schema}.outbox_parked")
    assert [r["payloads"] for r in parked] == [[too_large]]
    assert "MessageSizeTooLarge" in parked[0]["error"]
    assert await db.fetchval(f"SELECT count(*) FROM {scratch_schema}.outbox") == 0

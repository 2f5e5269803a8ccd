"""What a backfill applied, the live consumers skip by event id, not by offset.

No tiering service runs in this module: the live consumer of shop.orders is driven by hand,
so that it reaches the records only after the backfill, as one that lags behind would.
"""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import TopicTail, consumer_record, encoded, order_paid, unique
from tiering_tools import loyalty, net_total, publish, tiering_settings

from services.tiering.bootstrap import bootstrap as tiering_bootstrap
from shared.consumer import BatchConsumer


async def live_consumer(infrastructure: Endpoints, db: asyncpg.Pool) -> BatchConsumer:
    """The tiering service's own consumer of shop.orders, bound to the database only, its
    shop directory read once (the running service's background task would follow it)."""
    app, runtime = tiering_bootstrap(tiering_settings(infrastructure))
    directory = app.api.state.shop_directory  # type: ignore[attr-defined]
    async with db.acquire() as conn:
        await directory.load(conn)
    directory.caught_up.set()  # the stored versions are all this test publishes
    [consumer] = [c for c in runtime.consumers if c.topic == "shop.orders"]
    consumer.bind(db, lambda: None)
    return consumer


async def test_a_consumer_behind_a_backfill_skips_what_it_applied_and_applies_new_records(
    db: asyncpg.Pool, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("lag")
    paid = order_paid(customer, total="16000000")
    async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders") as orders:
        await publish(producer, paid)
        [record] = await orders.collect(lambda r: r.key == customer.encode(), count=1)

    report = await loyalty("tiering", "backfill", "--no-progress", "--customer", customer)
    consumer = await live_consumer(infrastructure, db)
    await consumer.process([record])  # the live consumer gets there after the backfill
    after_replay = await net_total(db, customer)
    # Offsets start again when the topic is created anew: a new record at a lower offset of
    # the same partition than the one the backfill stored is still a new record.
    later = order_paid(customer, total="1000000")
    renumbered = consumer_record(
        encoded(later), partition=record.partition, offset=0, key=customer.encode()
    )
    await consumer.process([renumbered])

    assert "1 customer(s) recomputed" in report
    assert await db.fetchval("SELECT 1 FROM tiering.inbox WHERE event_id = $1", paid.id) == 1
    assert after_replay == 16_000_000
    assert await net_total(db, customer) == 17_000_000

"""Record batches compressed by another Kafka client (librdkafka) with every codec Kafka has:
earn decodes each and applies its events, and the outbox relay compresses with the codec set."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from confluent_kafka import Producer
from earn_support import earn_of_its_own
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_paid, unique

CODECS = ("gzip", "snappy", "lz4", "zstd")


def produce_compressed(bootstrap: str, codec: str, records: list[tuple[bytes, bytes]]) -> None:
    """Publish (key, value) records through librdkafka, compressed with `codec`."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": codec,
            "acks": "all",
            # Several records per batch, so that batches really are compressed together.
            "linger.ms": 50,
        }
    )
    for key, value in records:
        producer.produce("shop.orders", value=value, key=key)
    left = producer.flush(30)
    assert left == 0, f"{left} records not delivered with {codec}"


@pytest.mark.parametrize("codec", CODECS)
async def test_earn_applies_orders_compressed_by_another_client(
    infrastructure: Endpoints, codec: str
) -> None:
    events = [order_paid(unique(f"zip-{codec}"), total="10", currency="USD") for _ in range(5)]
    orders = [e.data.order_id for e in events]
    async with earn_of_its_own(infrastructure, f"codec_{codec}") as earn:
        await asyncio.to_thread(
            produce_compressed,
            infrastructure.kafka_bootstrap,
            codec,
            [(e.subject.encode(), encoded(e)) for e in events],
        )
        db = await asyncpg.connect(earn.database_url)
        try:

            async def recorded() -> int:
                return int(
                    await db.fetchval(
                        "SELECT count(*) FROM earn.orders WHERE order_id = ANY($1::text[])", orders
                    )
                )

            await eventually(recorded, lambda n: n == len(orders), timeout=60)
        finally:
            await db.close()


async def test_outbox_relay_publishes_with_the_configured_codec(infrastructure: Endpoints) -> None:
    event = order_paid(unique("zip-out"), total="10", currency="USD")
    async with (
        TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points,
        earn_of_its_own(infrastructure, "codec_out", kafka_compression="zstd") as earn,
    ):
        relay = earn.runtime.relay
        assert relay is not None
        assert relay._producer is not None
        assert relay._producer._compression_type == "zstd"
        await asyncio.to_thread(
            produce_compressed,
            infrastructure.kafka_bootstrap,
            "lz4",
            [(event.subject.encode(), encoded(event))],
        )
        found = await points.collect(lambda r: r.key == event.subject.encode(), count=1)
    assert found

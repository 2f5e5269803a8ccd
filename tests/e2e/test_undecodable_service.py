"""A record batch earn cannot decode, on the real broker: earn runs as a process built without
the lz4 library, and librdkafka sends it an lz4 batch among uncompressed records."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from confluent_kafka import Message, Producer
from infrastructure import Endpoints
from support import encoded, eventually, order_paid, start_service_groups_at_end, unique

from services.earn.bootstrap import definition
from services.earn.settings import EarnSettings
from services.processes import ServiceProcess
from shared.settings import CommonSettings

WITHOUT_CRAMJAM = Path(__file__).parent.parent / "without_cramjam"
ORDERS = "shop.orders"
LOGS = Path(".local/test-logs")


def produce(bootstrap: str, codec: str, partition: int, events: list[Any]) -> list[int]:
    """Publish the events to one partition in one batch of `codec`; their offsets."""
    offsets: list[int] = []

    def delivered(error: object, message: Message) -> None:
        assert error is None, error
        offset = message.offset()
        assert offset is not None
        offsets.append(offset)

    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                         "linger.ms": 100, "acks": "all"})  # fmt: skip
    for event in events:
        producer.produce(
            ORDERS, encoded(event), event.subject.encode(), partition, on_delivery=delivered
        )
    assert producer.flush(30) == 0
    return sorted(offsets)


def big_order(customer: str) -> Any:
    """An order whose JSON compresses well: librdkafka sends a batch uncompressed when
    compressing it saves nothing."""
    return order_paid(customer, total="10", currency="USD", order_id=unique("o-" + "z" * 100))


async def applied(database_url: str, orders: list[str]) -> set[str]:
    db = await asyncpg.connect(database_url)
    try:
        rows = await db.fetch(
            "SELECT order_id FROM earn.orders WHERE order_id = ANY($1::text[])", orders
        )
    finally:
        await db.close()
    return {row["order_id"] for row in rows}


async def test_a_batch_of_a_codec_earn_cannot_decode_sets_its_partition_aside_and_says_so(
    infrastructure: Endpoints,
) -> None:
    prefix = unique("e2e-codec")
    topics = list(definition(EarnSettings()).handlers)
    await start_service_groups_at_end(
        infrastructure.kafka_bootstrap, CommonSettings(consumer_group_prefix=prefix), "earn", topics
    )
    path = os.pathsep.join(p for p in (str(WITHOUT_CRAMJAM), os.environ.get("PYTHONPATH")) if p)
    env = {
        "LOYALTY_LOG_FORMAT": "json",
        "LOYALTY_CONSUMER_GROUP_PREFIX": prefix,
        "PYTHONPATH": path,
    }
    earn = ServiceProcess("earn", env=env, log_dir=LOGS).launch()
    try:

        async def readiness() -> dict[str, Any]:
            try:
                async with httpx.AsyncClient() as client:
                    answer = await client.get(f"{earn.url}/readyz", timeout=2)
                return dict(answer.json())
            except httpx.HTTPError:
                return {}

        # Not ready from the start (lz4, snappy and zstd are missing), but started: consuming.
        started = await eventually(readiness, lambda body: body.get("checks", {}).get("started"))
        assert started["missing_codecs"] == ["snappy", "lz4", "zstd"]
        # The groups were positioned at the topics' ends before the start: what follows is read
        # from there however soon the partitions are assigned.

        customer, other = unique("c-lz4"), unique("c-plain")
        stuck = [big_order(customer) for _ in range(4)]
        behind = order_paid(customer, total="10", currency="USD")
        beside = [order_paid(other, total="10", currency="USD") for _ in range(9)]
        bootstrap = infrastructure.kafka_bootstrap
        lz4_offsets = await asyncio.to_thread(produce, bootstrap, "lz4", 0, stuck)
        await asyncio.to_thread(produce, bootstrap, "none", 0, [behind])
        for partition in (1, 2, 3):
            part = beside[3 * (partition - 1) : 3 * partition]
            await asyncio.to_thread(produce, bootstrap, "none", partition, part)

        def set_aside(body: dict[str, Any]) -> list[dict[str, Any]]:
            return [b for b in body.get("undecodable", []) if b["offset"] == lz4_offsets[0]
                    and b["topic"] == ORDERS and b["partition"] == 0]  # fmt: skip

        body = await eventually(readiness, lambda body: bool(set_aside(body)))
        (batch,) = set_aside(body)
        assert body["status"] == "not_ready"
        assert body["checks"]["codecs"] is False
        assert batch["codec"] == "lz4"
        assert batch["last_offset"] == lz4_offsets[-1]
        assert "lz4" in batch["reason"]

        # The other partitions' records are all applied, none lost to the failed polls; the
        # record behind the batch waits with it.
        orders = [e.data.order_id for e in beside]
        found = await eventually(
            lambda: applied(infrastructure.database_url, [*orders, behind.data.order_id]),
            lambda found: found >= set(orders),
        )
        assert found == set(orders)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{earn.url}/metrics", timeout=5)).text
        assert 'loyalty_consumer_partitions_set_aside{service="earn",topic="shop.orders"} 1.0' in (
            metrics
        )
    finally:
        earn.stop()
    assert earn.log_path is not None
    lines = [
        json.loads(line) for line in earn.log_path.read_text().splitlines() if line.startswith("{")
    ]
    said = [
        line for line in lines
        if line.get("event") == "kafka_batch_undecodable" and line.get("offset") == lz4_offsets[0]
        and line.get("partition") == 0
    ]  # fmt: skip
    assert len(said) == 1
    assert said[0]["codec"] == "lz4"
    assert said[0]["topic"] == ORDERS
    assert said[0]["level"] == "error"

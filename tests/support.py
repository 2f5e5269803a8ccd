"""Builders and waiting helpers shared by the integration and e2e tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from shared.events import CloudEvent, encode_event, make_event
from shared.events.catalog import TOPICS

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def order_paid(
    customer_id: str,
    *,
    total: str = "259000",
    currency: str = "VND",
    order_id: str | None = None,
    event_id: str | None = None,
) -> CloudEvent[Any]:
    """An order.paid event for one line whose price is the whole total."""
    model = TOPICS["shop.orders"]["order.paid"]
    amount = Decimal(total)
    data = model.model_validate(
        {
            "order_id": order_id or unique("o"),
            "customer_id": customer_id,
            "currency": currency,
            "items": [
                {
                    "sku": "SKU-1",
                    "name": "Tea set",
                    "category": "home",
                    "quantity": 1,
                    "unit_price": str(amount),
                }
            ],
            "totals": {"total": {"amount": str(amount), "currency": currency}},
        }
    )
    return make_event(
        "order.paid",
        source="tests/shop",
        subject=customer_id,
        data=data,
        id=event_id,
        time=datetime.now(UTC),
    )


def encoded(event: CloudEvent[Any]) -> bytes:
    return encode_event(event)


def consumer_record(
    value: bytes,
    *,
    topic: str = "shop.orders",
    partition: int = 0,
    offset: int = 0,
    key: bytes = b"c-1",
    headers: tuple[tuple[str, bytes], ...] = (),
) -> ConsumerRecord[bytes, bytes]:
    """A record as aiokafka hands it to a consumer."""
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=headers,
    )


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
) -> T:
    """Poll `probe` until `accept` holds; fail with the last value seen."""
    deadline = asyncio.get_running_loop().time() + timeout
    value = await probe()
    while not accept(value):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def start_group_at_end(bootstrap: str, group_id: str, topics: list[str]) -> None:
    """Commit a new consumer group's offsets at the current ends of `topics`.

    A test's services then consume only what the test publishes, even though the topics keep
    every earlier run's events and other test sessions may be consuming them at the same time.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], p["partition"])
        for topic in described
        for p in topic["partitions"]
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
    finally:
        await consumer.stop()


class TopicTail:
    """Reads a topic from the end offsets it had when created: only what a test produced."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicTail:
        # Subscribed without a group: every partition is assigned as soon as it starts.
        consumer = AIOKafkaConsumer(
            self._topic, bootstrap_servers=self._bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        tps = sorted(consumer.assignment())
        if not tps:
            await consumer.stop()
            raise AssertionError(f"topic {self._topic} has no partitions")
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp])
        self._consumer = consumer
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def collect(
        self, accept: Callable[[Any], bool], *, count: int, timeout: float = 30.0
    ) -> list[Any]:
        """Records (aiokafka ConsumerRecord) that `accept`, until `count` are seen."""
        assert self._consumer is not None
        found: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < count:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"saw {len(found)} of {count} records on {self._topic}")
            batch = await self._consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
            for records in batch.values():
                found.extend(r for r in records if accept(r))
        return found

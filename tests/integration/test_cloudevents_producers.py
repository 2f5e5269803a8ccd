"""Records written by another producer stack, the official CloudEvents SDK over librdkafka, in
both modes of the Kafka binding: earn applies them, dead-letters a bad one alike in either
mode while its neighbours apply, and what earn publishes reads back through the SDK."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from confluent_kafka import Producer
from earn_support import OwnEarn, earn_of_its_own
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_paid, unique

from shared.errors import RejectedMessage
from shared.events import CloudEvent, parse_event

ORDERS = "shop.orders"


def sdk_event(event: CloudEvent[Any], **data: Any) -> SdkEvent:
    """The SDK's own event for one of ours, its data as JSON carries it (changed by `data`)."""
    document = json.loads(encoded(event))
    return SdkEvent(
        attributes={
            "id": event.id,
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "time": event.time,
            "datacontenttype": "application/json",
        },
        data=document["data"] | data,
    )


def produce(bootstrap: str, messages: list[kafka.KafkaMessage]) -> None:
    """Publish the SDK's messages through librdkafka, in order, on shop.orders."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for message in messages:
        producer.produce(
            ORDERS, value=message.value, key=message.key, headers=list(message.headers.items())
        )
    left = producer.flush(30)
    assert left == 0, f"{left} records not delivered"


def by_subject(event: BaseCloudEvent) -> str | bytes | None:
    """The Kafka key the contract asks for: the subject (the SDK's default is `partitionkey`)."""
    return event.get_subject()


async def orders_recorded(earn: OwnEarn, orders: list[str]) -> list[str]:
    db = await asyncpg.connect(earn.database_url)
    try:
        rows = await db.fetch(
            "SELECT order_id FROM earn.orders WHERE order_id = ANY($1::text[]) ORDER BY order_id",
            orders,
        )
    finally:
        await db.close()
    return [row["order_id"] for row in rows]


async def test_earn_applies_orders_sent_by_the_sdk_in_either_mode(
    infrastructure: Endpoints,
) -> None:
    customer = unique("ce-modes")
    binary_order = order_paid(customer, total="10", currency="USD")
    structured_order = order_paid(customer, total="20", currency="USD")
    async with earn_of_its_own(infrastructure, "ce_modes") as earn:
        await asyncio.to_thread(
            produce,
            infrastructure.kafka_bootstrap,
            [
                kafka.to_binary(sdk_event(binary_order), JSONFormat(), by_subject),
                kafka.to_structured(sdk_event(structured_order), JSONFormat(), by_subject),
            ],
        )
        orders = sorted([binary_order.data.order_id, structured_order.data.order_id])
        await eventually(lambda: orders_recorded(earn, orders), lambda found: found == orders)


async def test_a_bad_binary_record_is_dead_lettered_as_its_structured_twin_while_neighbours_apply(
    infrastructure: Endpoints,
) -> None:
    customer = unique("ce-bad")
    before, after = (order_paid(customer, total="5", currency="USD") for _ in range(2))
    bad_binary, bad_structured = (order_paid(customer, total="5", currency="USD") for _ in range(2))
    control = {"items": [{"sku": "S", "name": "Te\u0007a", "category": "g", "quantity": 1,
                          "unit_price": "5"}]}  # fmt: skip
    twin = kafka.to_structured(sdk_event(bad_structured, **control), JSONFormat(), by_subject)
    with pytest.raises(RejectedMessage) as refused:
        parse_event(ORDERS, twin.value)
    reason = refused.value.reason.encode()
    assert b"items[0].name" in reason

    def refused_alike(letter: Any) -> bool:
        # Earn instances of other sessions on the broker may refuse these records for other
        # reasons (an older build, another clock): only this reason counts.
        headers: dict[str, bytes] = dict(letter.headers)
        return bool(letter.key == customer.encode() and headers["x-dlq-error-message"] == reason)

    async with (
        TopicTail(infrastructure.kafka_bootstrap, f"{ORDERS}.dlq") as dead,
        earn_of_its_own(infrastructure, "ce_bad") as earn,
    ):
        await asyncio.to_thread(
            produce,
            infrastructure.kafka_bootstrap,
            [
                kafka.to_binary(sdk_event(before), JSONFormat(), by_subject),
                kafka.to_binary(sdk_event(bad_binary, **control), JSONFormat(), by_subject),
                twin,
                kafka.to_binary(sdk_event(after), JSONFormat(), by_subject),
            ],
        )
        letters: dict[str, Any] = {}
        while len(letters) < 2:
            for letter in await dead.collect(refused_alike, count=1):
                headers = dict(letter.headers)
                mode = "binary" if "ce_id" in headers else "structured"
                letters.setdefault(mode, letter)
        orders = sorted([before.data.order_id, after.data.order_id])
        await eventually(lambda: orders_recorded(earn, orders), lambda found: found == orders)

    binary, structured = dict(letters["binary"].headers), dict(letters["structured"].headers)
    assert binary["x-dlq-error-class"] == structured["x-dlq-error-class"] == b"SchemaViolation"
    # Each dead letter is its record as it came: binary with its ce_ headers and the data alone.
    assert binary["ce_id"] == bad_binary.id.encode()
    assert json.loads(letters["binary"].value)["order_id"] == bad_binary.data.order_id
    assert structured["content-type"] == b"application/cloudevents+json"
    assert json.loads(letters["structured"].value)["id"] == bad_structured.id


async def test_points_events_read_back_through_the_sdk_as_structured_cloudevents(
    infrastructure: Endpoints,
) -> None:
    customer = unique("ce-out")
    order = order_paid(customer, total="10", currency="USD")
    async with (
        TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points,
        earn_of_its_own(infrastructure, "ce_out"),
    ):
        await asyncio.to_thread(
            produce,
            infrastructure.kafka_bootstrap,
            [kafka.to_binary(sdk_event(order), JSONFormat(), by_subject)],
        )
        (record,) = await points.collect(lambda r: r.key == customer.encode(), count=1)

    headers = dict(record.headers)
    message = kafka.KafkaMessage(headers=headers, key=record.key, value=record.value)
    read = kafka.from_structured(message, JSONFormat())
    ours = parse_event("loyalty.points", record.value)
    assert headers["content-type"] == b"application/cloudevents+json; charset=UTF-8"
    assert read.get_id() == ours.id
    assert read.get_type() == ours.type == "points.earned"
    assert read.get_source() == ours.source
    assert read.get_subject() == ours.subject == customer
    time = read.get_time()
    assert isinstance(time, datetime)
    assert time == ours.time
    data = read.get_data()
    assert data == json.loads(record.value)["data"]
    assert isinstance(data, dict)
    assert data["source_event_id"] == order.id

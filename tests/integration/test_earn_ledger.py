"""order.paid on the real broker and database becomes ledger entries, balances and events."""

from __future__ import annotations

import json

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_paid, unique

from shared.events import parse_event
from shared.runtime import Runtime


async def entries_of(db: asyncpg.Pool, customer_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM earn.ledger WHERE customer_id = $1 ORDER BY seq", customer_id
    )


async def test_order_paid_yields_entry_balance_and_points_earned_event(
    earn: Runtime, db: asyncpg.Pool, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    event = order_paid(customer, total="259000", currency="VND")

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points:
        await producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())
        entries = await eventually(lambda: entries_of(db, customer), lambda rows: len(rows) == 1)
        published = await points.collect(lambda r: r.key == customer.encode(), count=1)

    entry = entries[0]
    assert (entry["kind"], entry["delta"], entry["balance_after"]) == ("earned", 25, 25)
    assert entry["source_event_id"] == event.id
    balance = await db.fetchval(
        "SELECT points_balance FROM earn.accounts WHERE customer_id = $1", customer
    )
    assert balance == 25
    body = json.loads(published[0].value)
    assert body["type"] == "points.earned"
    assert body["subject"] == customer
    assert body["data"]["entry_id"] == entry["entry_id"]
    assert (body["data"]["delta"], body["data"]["balance_after"]) == (25, 25)


async def test_same_event_published_three_times_yields_one_entry(
    earn: Runtime, db: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    event = order_paid(customer, total="20.50", currency="USD")
    follow_up = order_paid(customer, total="3", currency="USD")

    for _ in range(3):
        await producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())
    # A later event on the same partition proves the three copies were consumed.
    await producer.send_and_wait("shop.orders", encoded(follow_up), key=customer.encode())
    entries = await eventually(lambda: entries_of(db, customer), lambda rows: len(rows) == 2)

    assert [e["delta"] for e in entries] == [20, 3]
    assert [e["balance_after"] for e in entries] == [20, 23]


async def test_bad_messages_go_to_dlq_and_a_valid_one_after_them_is_processed(
    earn: Runtime, db: asyncpg.Pool, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    key = customer.encode()
    # Bytes of its own: a record that does not parse is known by its position and bytes, and
    # a fresh broker hands the same positions out again while the inbox keeps the old keys.
    not_json = b"{this is not json " + key
    invalid = json.loads(encoded(order_paid(customer)))
    invalid["data"]["totals"]["total"]["amount"] = "-5"
    valid = order_paid(customer, total="50000")

    async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders.dlq") as dlq:
        await producer.send_and_wait("shop.orders", not_json, key=key, headers=[("trace", b"t1")])
        await producer.send_and_wait("shop.orders", json.dumps(invalid).encode(), key=key)
        await producer.send_and_wait("shop.orders", encoded(valid), key=key)
        # Other services of the session (tiering) consume shop.orders and dead-letter them too.
        by_earn = lambda r: r.key == key and dict(r.headers)["x-dlq-service"] == b"earn"  # noqa: E731
        dead = await dlq.collect(by_earn, count=2)
        entries = await eventually(lambda: entries_of(db, customer), lambda rows: len(rows) == 1)

    assert entries[0]["source_event_id"] == valid.id
    by_class = {dict(r.headers)["x-dlq-error-class"].decode(): r for r in dead}
    assert set(by_class) == {"InvalidJson", "SchemaViolation"}
    assert by_class["InvalidJson"].value == not_json
    assert dict(by_class["InvalidJson"].headers)["trace"] == b"t1"
    headers = {k: v.decode() for k, v in by_class["SchemaViolation"].headers}
    assert "total" in headers["x-dlq-error-message"]
    assert headers["x-dlq-service"] == "earn"
    assert headers["x-dlq-topic"] == "shop.orders"
    assert headers["x-dlq-time"]


async def test_ledger_refuses_update_and_delete(
    earn: Runtime, db: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await producer.send_and_wait(
        "shop.orders", encoded(order_paid(customer)), key=customer.encode()
    )
    await eventually(lambda: entries_of(db, customer), lambda rows: len(rows) == 1)

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute("UPDATE earn.ledger SET delta = 1000 WHERE customer_id = $1", customer)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute("DELETE FROM earn.ledger WHERE customer_id = $1", customer)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute("TRUNCATE earn.ledger")
    assert len(await entries_of(db, customer)) == 1


async def test_an_order_paid_under_the_longest_event_id_still_earns_and_announces_it(
    earn: Runtime, db: asyncpg.Pool, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    """The entry id is "earn:" and the input's id, and event ids may be 256 characters: the
    entry's id is bounded so that its points.earned is still a valid event."""
    customer = unique("c")
    longest = unique("e").ljust(256, "e")  # unique: the inbox outlives a test session
    event = order_paid(customer, total="259000", currency="VND", event_id=longest)
    again = order_paid(customer, total="100000", currency="VND", event_id=longest)

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points:
        await producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())
        await producer.send_and_wait("shop.orders", encoded(again), key=customer.encode())
        entries = await eventually(lambda: entries_of(db, customer), lambda rows: len(rows) == 1)
        [published] = await points.collect(lambda r: r.key == customer.encode(), count=1)

    announced = parse_event("loyalty.points", published.value)
    assert announced.id == entries[0]["entry_id"]
    assert len(announced.id) == 256
    assert announced.id.startswith(f"earn:{longest[:100]}")
    assert (announced.data.delta, announced.data.source_event_id) == (25, event.id)

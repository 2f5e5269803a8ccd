"""Builders and waiting helpers shared by the integration and e2e tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import uvicorn
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from diagnosis import services_state, started, stopped
from faststream.asgi import AsgiFastStream
from session_database import with_database

from shared.events import CloudEvent, encode_event, make_event
from shared.events.catalog import TOPICS
from shared.kafka_connection import KafkaConnection, kafka_connection
from shared.runtime import Runtime, consumer_group
from shared.settings import CommonSettings
from shared.topics import start_group_at_end

T = TypeVar("T")


def loyalty_command(
    *args: str, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `loyalty ARGS...` as an operator would, in a process of its own, with `env` over the
    test's environment (console logs unless it says otherwise); the exit status is the
    caller's to check."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=os.environ | {"LOYALTY_LOG_FORMAT": "console"} | dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def own_groups() -> str:
    """A consumer group prefix for one start of a service: its groups begin at the topics'
    ends, so it sees only what the tests publish from then on, whatever earlier modules, runs
    or concurrent sessions left in the topics or did to other groups."""
    return unique("test")


def order_paid(
    customer_id: str,
    *,
    total: str = "259000",
    currency: str = "VND",
    order_id: str | None = None,
    event_id: str | None = None,
    at: datetime | None = None,
) -> CloudEvent[Any]:
    """An order.paid event for one line whose price is the whole total (paid now unless `at`)."""
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
        time=at or datetime.now(UTC),
    )


def order_refunded(
    customer_id: str,
    order_id: str,
    *,
    amount: str | None = None,
    currency: str = "VND",
    at: datetime | None = None,
) -> CloudEvent[Any]:
    """A partial refund of `amount`, or a full refund when no amount is given."""
    data = TOPICS["shop.orders"]["order.refunded"].model_validate(
        {
            "order_id": order_id,
            "customer_id": customer_id,
            "refund": {"amount": amount or "0", "currency": currency},
            "full": amount is None,
        }
    )
    return make_event(
        "order.refunded",
        source="tests/shop",
        subject=customer_id,
        data=data,
        time=at or datetime.now(UTC),
    )


def order_cancelled(
    customer_id: str, order_id: str, *, at: datetime | None = None
) -> CloudEvent[Any]:
    data = TOPICS["shop.orders"]["order.cancelled"].model_validate(
        {"order_id": order_id, "customer_id": customer_id}
    )
    return make_event(
        "order.cancelled",
        source="tests/shop",
        subject=customer_id,
        data=data,
        time=at or datetime.now(UTC),
    )


def membership_purchased(
    customer_id: str, tier: str, *, starts_at: datetime, ends_at: datetime
) -> CloudEvent[Any]:
    data = TOPICS["loyalty.memberships"]["membership.purchased"].model_validate(
        {
            "customer_id": customer_id,
            "tier": tier,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "order_id": unique("m"),
        }
    )
    return make_event(
        "membership.purchased",
        source="tests/shop",
        subject=customer_id,
        data=data,
        time=datetime.now(UTC),
    )


def membership_cancelled(purchase: CloudEvent[Any], *, at: datetime) -> CloudEvent[Any]:
    """The cancellation of the membership `purchase` announced, at `at`."""
    bought = purchase.data
    data = TOPICS["loyalty.memberships"]["membership.cancelled"].model_validate(
        {**bought.model_dump(), "cancelled_at": at}
    )
    return make_event(
        "membership.cancelled", source="tests/shop", subject=bought.customer_id, data=data, time=at
    )


def encoded(event: CloudEvent[Any]) -> bytes:
    return encode_event(event)


def consumer_record(
    value: bytes,
    *,
    topic: str = "shop.orders",
    partition: int = 0,
    offset: int = 0,
    key: bytes | None = None,
    headers: tuple[tuple[str, bytes], ...] = (),
) -> ConsumerRecord[bytes, bytes]:
    """A record as aiokafka hands it to a consumer; keyed by the event's subject unless `key`
    is given, as the contract asks."""
    key = _subject_of(value) if key is None else key
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


def _subject_of(value: bytes) -> bytes:
    try:
        subject = json.loads(value).get("subject")
    except (ValueError, AttributeError):
        subject = None
    return subject.encode() if isinstance(subject, str) else b"c-1"


# Long enough for a chain of services on a busy machine; a passing wait ends far sooner.
WAIT_S = 60.0


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    timeout: float = WAIT_S,
    interval: float = 0.2,
    explain: Callable[[], Awaitable[str]] | None = None,
) -> T:
    """Poll `probe` until `accept` holds; fail with the last value seen, what `explain`
    says, and the state of the services running in the test process."""
    deadline = asyncio.get_running_loop().time() + timeout
    value = await probe()
    while not accept(value):
        if asyncio.get_running_loop().time() > deadline:
            told = f" || {await explain()}" if explain is not None else ""
            raise AssertionError(
                f"condition not met within {timeout}s; last value: {value!r}{told}"
                f"{services_state()}"
            )
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def start_service_groups_at_end(
    kafka: KafkaConnection | str, settings: CommonSettings, service: str, topics: list[str]
) -> None:
    """Position each of a service's consumer groups (one per topic) at its topic's end."""
    for topic in topics:
        await start_group_at_end(kafka, consumer_group(settings, service, topic), [topic])


@contextlib.asynccontextmanager
async def running(app: AsgiFastStream, runtime: Runtime) -> AsyncIterator[Runtime]:
    """A service started in the test process, its consumer groups positioned at the topics'
    ends first, so that it sees only what the tests publish; stopped on exit."""
    settings = runtime.settings
    await start_service_groups_at_end(
        KafkaConnection.from_settings(settings),
        settings,
        runtime.definition.name,
        list(runtime.definition.handlers),
    )
    await app.start()
    started(runtime)
    try:
        await partitions_assigned(runtime)
        yield runtime
    finally:
        stopped(runtime)
        await app.stop()


async def partitions_assigned(runtime: Runtime, timeout: float = 90.0) -> None:
    """Wait until every consumer of the service holds its topic's partitions: a test's clock
    then starts when the service can consume, however slowly the group joined."""

    async def missing() -> list[str]:
        topics = []
        for subscriber in runtime.broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None or not consumer.assignment():
                topics += list(getattr(subscriber, "topic_names", ["?"]))
        return topics

    await eventually(missing, lambda topics: not topics, timeout=timeout)


class TopicTail:
    """Reads a topic from the end offsets it had when created: only what a test produced."""

    def __init__(self, kafka: KafkaConnection | str, topic: str) -> None:
        self._kafka = kafka_connection(kafka)
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicTail:
        # Subscribed without a group: every partition is assigned as soon as it starts.
        consumer = AIOKafkaConsumer(
            self._topic, **self._kafka.client_options(), enable_auto_commit=False
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

    async def settle(self, accept: Callable[[Any], bool], *, seconds: float) -> list[Any]:
        """Every record that `accept` within `seconds`: to show that nothing more arrives."""
        assert self._consumer is not None
        found: list[Any] = []
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            batch = await self._consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000) + 1)
            for records in batch.values():
                found.extend(r for r in records if accept(r))
        return found

    async def collect(
        self, accept: Callable[[Any], bool], *, count: int, timeout: float = WAIT_S
    ) -> list[Any]:
        """Records (aiokafka ConsumerRecord) that `accept`, until `count` are seen."""
        assert self._consumer is not None
        found: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < count:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"saw {len(found)} of {count} records on {self._topic}{services_state()}"
                )
            batch = await self._consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
            for records in batch.values():
                found.extend(r for r in records if accept(r))
        return found


@contextlib.asynccontextmanager
async def database_of_its_own(database_url: str, prefix: str) -> AsyncIterator[str]:
    """A fresh database beside the session's, dropped on exit: a service instance with a
    programme of its own shares no inbox, ledger or outbox with the session's services."""
    name = unique(prefix).replace("-", "_")
    admin = await asyncpg.connect(database_url)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(database_url, name)
    finally:
        # FORCE cannot end an autovacuum worker of the superuser: wait for it and try again.
        for attempt in range(20):
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                break
            except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
                if attempt == 19:
                    raise
                await asyncio.sleep(0.5)
        await admin.close()


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """An ASGI app, already started, on an HTTP port of its own; its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task

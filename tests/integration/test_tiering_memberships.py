"""A paid membership grants its tier for the paid period; an unknown tier is dead-lettered;
a purchase and its cancellation in one batch end as one after the other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import (
    TopicTail,
    consumer_record,
    encoded,
    membership_cancelled,
    membership_purchased,
    unique,
)
from tiering_tools import TieringService, body, loyalty, publish

from services.tiering.handlers import apply_memberships
from services.tiering.programme import load_programme
from services.tiering.shops import TierProgrammes
from shared.clock import FixedClock
from shared.consumer import Incoming, to_incoming
from shared.events import CloudEvent


async def test_membership_grants_its_tier_until_the_paid_period_ends(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customer = unique("c")
    mine = lambda record: record.key == customer.encode()  # noqa: E731
    starts_at = datetime.now(UTC) - timedelta(minutes=1)
    ends_at = starts_at + timedelta(days=30)

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        await publish(
            producer, membership_purchased(customer, "gold", starts_at=starts_at, ends_at=ends_at)
        )
        [granted] = await tiers.collect(mine, count=1)
        await loyalty("tiering", "evaluate", "--at", ends_at.isoformat(), "--customer", customer)
        [expired] = await tiers.collect(mine, count=1)

    up, down = body(granted)["data"], body(expired)["data"]
    assert (up["from_tier"], up["to_tier"], up["reason"]) == ("member", "gold", "membership")
    assert up["multiplier"] == "1.5"
    assert (down["to_tier"], down["reason"]) == ("member", "membership_ended")
    assert datetime.fromisoformat(down["effective_at"]) == ends_at
    floors = await db.fetch(
        "SELECT kind, tier FROM tiering.floors WHERE customer_id = $1", customer
    )
    assert [(f["kind"], f["tier"]) for f in floors] == [("membership", "gold")]


async def test_a_cancelled_membership_ends_its_tier_at_the_cancellation(
    tiering: TieringService, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda record: record.key == customer.encode()  # noqa: E731
    starts_at = datetime.now(UTC) - timedelta(minutes=5)
    purchase = membership_purchased(
        customer, "gold", starts_at=starts_at, ends_at=starts_at + timedelta(days=365)
    )

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        await publish(producer, purchase)
        [granted] = await tiers.collect(mine, count=1)
        cancelled_at = datetime.now(UTC)  # the order is cancelled after it was paid
        await publish(producer, membership_cancelled(purchase, at=cancelled_at))
        [ended] = await tiers.collect(mine, count=1)
        later = await tiers.settle(mine, seconds=1.5)

    up, down = body(granted)["data"], body(ended)["data"]
    assert (up["to_tier"], up["reason"]) == ("gold", "membership")
    assert (down["from_tier"], down["to_tier"], down["reason"]) == (
        "gold",
        "member",
        "membership_ended",
    )
    assert datetime.fromisoformat(down["effective_at"]) == cancelled_at
    assert later == []


async def test_membership_of_a_tier_the_programme_lacks_goes_to_the_dead_letter_topic(
    tiering: TieringService, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    now = datetime.now(UTC)
    event = membership_purchased(
        customer, "diamond", starts_at=now, ends_at=now + timedelta(days=1)
    )

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.memberships.dlq") as dlq:
        await publish(producer, event)
        [dead] = await dlq.collect(lambda r: r.key == customer.encode(), count=1)

    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-dlq-error-class"] == "UnknownTier"
    assert headers["x-dlq-service"] == "tiering"
    assert "diamond" in headers["x-dlq-error-message"]


async def test_a_purchase_and_its_cancellation_in_one_batch_leave_the_cancelled_floor(
    db: asyncpg.Pool, tiering_schema: str
) -> None:
    """Both events name the same floor (customer, membership, order): applied in one batch they
    end as they would one batch after the other, the cancellation last."""
    customer = unique("c")
    starts_at = datetime.now(UTC) - timedelta(minutes=5)
    purchase = membership_purchased(
        customer, "gold", starts_at=starts_at, ends_at=starts_at + timedelta(days=365)
    )
    cancelled_at = starts_at + timedelta(minutes=2)
    batch = [
        incoming(purchase, offset=0),
        incoming(membership_cancelled(purchase, at=cancelled_at), offset=1),
    ]
    async with db.acquire() as conn, conn.transaction():
        refused = await apply_memberships(
            conn,
            batch,
            programmes=TierProgrammes(load_programme(None)),
            schema=tiering_schema,
            clock=FixedClock(datetime.now(UTC)),
        )

    assert refused == []
    floors = await db.fetch(
        f"SELECT tier, ends_at, reason FROM {tiering_schema}.floors WHERE customer_id = $1",
        customer,
    )
    assert [(f["tier"], f["ends_at"]) for f in floors] == [("gold", cancelled_at)]
    assert floors[0]["reason"].endswith("cancelled")


def incoming(event: CloudEvent[Any], *, offset: int) -> Incoming:
    parsed = to_incoming(
        consumer_record(
            encoded(event), topic="loyalty.memberships", offset=offset, key=event.subject.encode()
        )
    )
    assert isinstance(parsed, Incoming)
    return parsed

"""Points digests: one per customer per local day, whatever order the events arrive in."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import RunDue, SmtpInbox, earned, notify_customer, signed_up
from support import encoded, eventually

from shared.events import CloudEvent
from shared.runtime import Runtime

# 18:00 UTC is 01:00 the next day in Ho Chi Minh City (UTC+7): the UTC day and the local day
# differ. Times of their own, so that a pass at them claims only this module's messages.
EVENING = datetime(2030, 5, 1, 18, 0, tzinfo=UTC)
MORNING = datetime(2030, 5, 2, 1, 30, tzinfo=UTC)  # 08:30 local: outside the quiet hours


async def publish(producer: AIOKafkaProducer, topic: str, event: CloudEvent[Any]) -> None:
    await producer.send_and_wait(topic, encoded(event), key=event.subject.encode())


async def rows(db: asyncpg.Pool, customer: str, trigger: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM notify.scheduled WHERE customer_id = $1 AND trigger = $2 ORDER BY id",
        customer,
        trigger,
    )


async def test_points_before_the_sign_up_join_the_digest_of_the_customers_local_day(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customer = notify_customer()
    email = f"{customer}@mail.example"
    await publish(producer, "loyalty.points", earned(customer, 25, 25, EVENING))
    await eventually(lambda: rows(db, customer, "points.digest"), lambda found: len(found) == 1)
    sign_up = signed_up(
        customer, EVENING + timedelta(minutes=2), email=email, name="An", locale="en-US"
    )
    await publish(producer, "shop.customers", sign_up)
    await eventually(
        lambda: rows(db, customer, "customer.signed_up"), lambda found: len(found) == 1
    )
    await publish(
        producer, "loyalty.points", earned(customer, 40, 65, EVENING + timedelta(minutes=5))
    )
    await eventually(
        lambda: db.fetchval("SELECT balance FROM notify.points WHERE customer_id = $1", customer),
        lambda balance: balance == 65,
    )

    outcome = await run_due(MORNING)

    assert outcome["sent"] >= 2
    digests = [m for m in smtp.to(email) if "points today" in str(m.message["Subject"])]
    assert len(digests) == 1
    found = re.fullmatch(r"An, you earned (\d+) points today", str(digests[0].message["Subject"]))
    assert found is not None
    assert int(found[1]) >= 65  # both credits (and any other credit of that day)
    sent = [r for r in await rows(db, customer, "points.digest") if r["status"] == "sent"]
    assert len(sent) == 1
    assert sent[0]["dedup_key"] == f"points_digest:{customer}:2030-05-02:email"


async def test_points_and_the_sign_up_arriving_together_give_one_digest(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customer = notify_customer()
    email = f"{customer}@mail.example"
    sign_up = signed_up(customer, EVENING, email=email, name="An", locale="en-US")
    await publish(producer, "loyalty.points", earned(customer, 25, 25, EVENING))
    await publish(producer, "shop.customers", sign_up)  # consumed in parallel with the points
    await eventually(
        lambda: rows(db, customer, "customer.signed_up"), lambda found: len(found) == 1
    )
    await eventually(lambda: rows(db, customer, "points.digest"), lambda found: len(found) >= 1)
    later = EVENING + timedelta(minutes=5)
    await publish(producer, "loyalty.points", earned(customer, 40, 65, later))
    await eventually(
        lambda: db.fetchval("SELECT balance FROM notify.points WHERE customer_id = $1", customer),
        lambda balance: balance == 65,
    )

    await run_due(MORNING)

    digests = [m for m in smtp.to(email) if "points today" in str(m.message["Subject"])]
    assert len(digests) == 1
    keys = [r["dedup_key"] for r in await rows(db, customer, "points.digest")]
    assert f"points_digest:{customer}:2030-05-02:email" in keys

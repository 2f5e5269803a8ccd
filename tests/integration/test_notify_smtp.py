"""Email on the wire, read by a real SMTP server: addresses, the connection pool, header folding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import RunDue, SmtpInbox, notify_customer, signed_up
from support import encoded, eventually

from shared.runtime import Runtime

# 10:00 in Ho Chi Minh City (UTC+7), outside the quiet hours; earlier than the other notify
# tests' times, so a pass at it claims only this module's messages.
T0 = datetime(2030, 3, 1, 3, 0, tzinfo=UTC)


async def sign_up(producer: AIOKafkaProducer, db: asyncpg.Pool, customer: str, email: str) -> None:
    event = signed_up(customer, T0, email=email)
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetch("SELECT 1 FROM notify.scheduled WHERE customer_id = $1", customer),
        lambda rows: len(rows) == 1,
    )


async def test_an_address_at_an_idna_2008_domain_is_sent_to_that_domain(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customer = notify_customer()
    await sign_up(producer, db, customer, f"{customer}@straße.de")

    outcome = await run_due(T0 + timedelta(minutes=1))

    assert outcome["sent"] == 1
    assert len(smtp.to(f"{customer}@xn--strae-oqa.de")) == 1
    assert smtp.to(f"{customer}@strasse.de") == []  # IDNA 2003's mapping: another domain

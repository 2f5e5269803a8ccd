"""Email on the wire, read by a real SMTP server: addresses, the connection pool, header folding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import RunDue, SmtpInbox, notify_customer, signed_up
from support import encoded, eventually

from services.notify.settings import NotifySettings
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


@pytest.fixture
async def refusing_smtp() -> AsyncIterator[SmtpInbox]:
    """An SMTP server of the test's own that refuses every recipient with 550 at RCPT."""
    inbox = SmtpInbox(refuse_rcpt=lambda _address: True).start()
    try:
        yield inbox
    finally:
        inbox.stop()


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


async def test_recipients_refused_at_rcpt_leave_no_smtp_connection_behind(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    notify_settings: NotifySettings,
    refusing_smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customers = [notify_customer() for _ in range(12)]
    for customer in customers:
        await sign_up(producer, db, customer, f"{customer}@mail.example")
    settings = notify_settings.model_copy(update={"smtp_port": refusing_smtp.port})

    outcome = await run_due(T0 + timedelta(minutes=1), settings)

    assert outcome["failed"] == 12
    assert refusing_smtp.messages == []
    # A refused recipient leaves its connection reusable (the envelope is reset): the pool
    # never holds more than its size, and closing the channel closes every connection.
    assert 1 <= refusing_smtp.peak_connections <= settings.smtp_pool_size
    for _ in range(50):
        if refusing_smtp.open_connections == 0:
            break
        await asyncio.sleep(0.1)
    assert refusing_smtp.open_connections == 0
    details = await db.fetch(
        "SELECT detail FROM notify.delivery_log WHERE customer_id = ANY($1::text[])", customers
    )
    assert {r["detail"] for r in details} == {"SMTP recipient refused: 550"}

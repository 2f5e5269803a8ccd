"""Email on the wire, read by a real SMTP server: addresses, the connection pool, header folding."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import Captured, RunDue, SmtpInbox, cart_abandoned, notify_customer, signed_up
from support import encoded, eventually

from services.notify.settings import NotifySettings
from shared.runtime import Runtime

# 10:00 in Ho Chi Minh City (UTC+7), outside the quiet hours; earlier than the other notify
# tests' times, so a pass at it claims only this module's messages.
T0 = datetime(2030, 3, 1, 3, 0, tzinfo=UTC)


ENCODED_WORD = re.compile(rb"=\?[^?]+\?[bBqQ]\?[^?]*\?=")


async def sign_up(
    producer: AIOKafkaProducer, db: asyncpg.Pool, customer: str, email: str, name: str = "An"
) -> None:
    event = signed_up(customer, T0, email=email, name=name)
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetch("SELECT 1 FROM notify.scheduled WHERE customer_id = $1", customer),
        lambda rows: len(rows) == 1,
    )


def header_lines(captured: Captured) -> dict[str, list[bytes]]:
    """Each header's physical lines, as the SMTP server received them."""
    head = re.split(rb"\r?\n\r?\n", captured.raw, maxsplit=1)[0]
    headers: dict[str, list[bytes]] = {}
    name = ""
    for line in re.split(rb"\r?\n", head):
        if not line[:1].isspace():
            name = line.partition(b":")[0].decode().lower()
        headers.setdefault(name, []).append(line)
    return headers


def decoded(lines: list[bytes]) -> str:
    """A header's value as an RFC 2047 reader gets it: unfolded, words decoded and joined."""
    value = b"".join(lines).decode("ascii").partition(":")[2]
    return str(make_header(decode_header(value)))


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


async def test_long_subjects_and_names_fold_into_short_encoded_words_that_decode_exactly(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customer = notify_customer()
    email = f"{customer}@mail.example"
    name = "Nguyễn Thị Minh Khai " * 9 + "Nguyễn"  # 195 characters, as long as names go
    await sign_up(producer, db, customer, email, name=name)
    await producer.send_and_wait(
        "shop.carts", encoded(cart_abandoned(customer, T0)), key=customer.encode()
    )
    await eventually(
        lambda: db.fetch("SELECT 1 FROM notify.scheduled WHERE customer_id = $1", customer),
        lambda rows: len(rows) == 3,
    )

    outcome = await run_due(T0 + timedelta(minutes=61))

    assert outcome["sent"] == 2
    welcome, reminder = smtp.to(email)
    expected = {
        id(welcome): f"Chào mừng {name}!",
        id(reminder): f"{name} ơi, giỏ hàng của bạn đang chờ",
    }
    for captured in (welcome, reminder):
        headers = header_lines(captured)
        for header in ("subject", "to", "from"):
            assert all(len(line) <= 78 for line in headers[header]), headers[header]
            for line in headers[header]:
                assert all(len(word) <= 75 for word in ENCODED_WORD.findall(line)), line
        assert len(headers["subject"]) > 1  # folded
        assert decoded(headers["subject"]) == expected[id(captured)]
        assert decoded(headers["to"]) == f"{name} <{email}>"
        assert str(captured.message["Subject"]) == expected[id(captured)]


async def test_a_sign_up_at_a_special_use_domain_is_kept_and_its_email_suppressed(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customer = notify_customer()
    email = f"{customer}@example.test"
    await sign_up(producer, db, customer, email)  # planned: not dead-lettered

    outcome = await run_due(T0 + timedelta(minutes=1))

    assert outcome["suppressed"] == 1
    assert smtp.to(email) == []
    known = await db.fetchval("SELECT email FROM notify.customers WHERE customer_id = $1", customer)
    assert known == email
    log = await db.fetch(
        "SELECT outcome, detail FROM notify.delivery_log WHERE customer_id = $1", customer
    )
    assert [(r["outcome"], r["detail"]) for r in log] == [("suppressed", "invalid_address")]

"""Welcome and cart reminders by email over real SMTP: content, unsubscribe, cancel, cap, hours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from babel.numbers import format_currency
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from notify_support import (
    RunDue,
    SmtpInbox,
    cart_abandoned,
    notify_customer,
    order_placed,
    signed_up,
)
from support import TopicTail, encoded, eventually

from shared.events import CloudEvent
from shared.runtime import Runtime

# 10:00 in Ho Chi Minh City (UTC+7): outside the default quiet hours (21:00-08:00).
T0 = datetime(2031, 6, 1, 3, 0, tzinfo=UTC)


async def publish(producer: AIOKafkaProducer, topic: str, event: CloudEvent[Any]) -> None:
    await producer.send_and_wait(topic, encoded(event), key=event.subject.encode())


async def scheduled(db: asyncpg.Pool, customer: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM notify.scheduled WHERE customer_id = $1 ORDER BY due_at, id", customer
    )


async def sign_up_with_cart(
    producer: AIOKafkaProducer, db: asyncpg.Pool, customer: str, email: str, **kw: Any
) -> None:
    await publish(producer, "shop.customers", signed_up(customer, T0, email=email, **kw))
    await eventually(lambda: scheduled(db, customer), lambda rows: len(rows) == 1)
    await publish(producer, "shop.carts", cart_abandoned(customer, T0))
    await eventually(lambda: scheduled(db, customer), lambda rows: len(rows) == 3)


def outcomes_of(records: list[Any]) -> list[tuple[str, str, str | None]]:
    found = []
    for record in records:
        body = json.loads(record.value)
        found.append((body["type"], body["data"]["trigger"], body["data"].get("reason")))
    return found


async def test_cart_reminder_email_has_name_items_localised_money_and_one_click_unsubscribe(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customer = notify_customer()
    email = f"{customer}@mail.example"
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.notifications") as events:
        await sign_up_with_cart(producer, db, customer, email)

        first = await run_due(T0 + timedelta(minutes=61))
        captured = smtp.to(email)
        assert captured[0].message["Subject"] == "Chào mừng Nguyễn Văn An!"
        reminder = captured[1]
        app = notify[0]
        unsubscribe_url = reminder.message["List-Unsubscribe"].strip("<>")
        url = urlsplit(unsubscribe_url)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://notify.shop.example"
        ) as client:
            answer = await client.post(
                f"{url.path}?{url.query}",
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            request, mac = url.query.removeprefix("token=").split(".")
            # The signature's first character: all six of its bits are the signature's.
            tampered = f"{request}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}"
            forged = await client.post(f"{url.path}?token={tampered}")
        second = await run_due(T0 + timedelta(hours=24, minutes=1))
        published = await events.collect(lambda r: r.key == customer.encode(), count=3)

    assert first["sent"] == 2
    assert len(captured) == 2
    assert reminder.rcpt_tos == [email]
    assert "Nguyễn Văn An" in reminder.message["Subject"]
    text, html = reminder.part("plain"), reminder.part("html")
    price = format_currency(Decimal(1234567), "VND", locale="vi_VN")
    assert price.replace("\xa0", " ") == "1.234.567 ₫"
    for part in (text, html):
        assert "Nguyễn Văn An" in part
        assert price in part
        assert format_currency(Decimal(1412567), "VND", locale="vi_VN") in part
        assert "Chén sứ men lam" in part
        assert "https://shop.example/cart/1" in part
    assert "Bộ ấm trà &lt;Bát Tràng&gt;" in html  # autoescaped in HTML
    assert "Bộ ấm trà <Bát Tràng>" in text  # verbatim in plain text
    assert 'src="https://shop.example/img/tea-01.jpg"' in html
    assert 'href="https://shop.example/p/tea-01"' in html
    assert reminder.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe_url.startswith("https://notify.shop.example/unsubscribe?token=")
    assert reminder.message_id.startswith("<notify-") and "@shop.example>" in reminder.message_id
    assert answer.status_code == 200
    assert forged.status_code == 403
    consent = await db.fetchval(
        "SELECT consent_email FROM notify.customers WHERE customer_id = $1", customer
    )
    assert consent is False
    assert second["suppressed"] >= 1
    assert len(smtp.to(email)) == 2  # the 24-hour reminder did not go
    assert outcomes_of(published) == [
        ("notification.sent", "customer.signed_up", None),
        ("notification.sent", "cart.abandoned", None),
        ("notification.suppressed", "cart.abandoned", "unsubscribed"),
    ]
    # Every id names the message by its UUID, never by the database's row number, so that a
    # recreated database beside the same topic cannot reuse one.
    ids = await db.fetch(
        "SELECT trigger, message_id, status FROM notify.scheduled WHERE customer_id = $1"
        " AND status IN ('sent', 'suppressed') ORDER BY id",
        customer,
    )
    bodies = [json.loads(r.value) for r in published]
    assert [(b["id"], b["data"]["notification_id"]) for b in bodies] == [
        (f"notify:{r['message_id']}:{r['status']}", f"n-{r['message_id']}") for r in ids
    ]
    assert reminder.message_id == f"<notify-{ids[1]['message_id']}@shop.example>"


async def test_order_placed_before_the_reminder_is_due_cancels_it(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customer = notify_customer()
    email = f"{customer}@mail.example"
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.notifications") as events:
        await sign_up_with_cart(producer, db, customer, email)
        await publish(producer, "shop.orders", order_placed(customer, T0 + timedelta(minutes=30)))
        rows = await eventually(
            lambda: scheduled(db, customer),
            lambda rows: [r["status"] for r in rows] == ["pending", "cancelled", "cancelled"],
        )
        outcome = await run_due(T0 + timedelta(hours=25))
        published = await events.collect(lambda r: r.key == customer.encode(), count=3)

    assert outcome["sent"] >= 1
    assert [m.message["Subject"] for m in smtp.to(email)] == ["Chào mừng Nguyễn Văn An!"]
    log = await db.fetch(
        "SELECT outcome, detail FROM notify.delivery_log WHERE customer_id = $1 ORDER BY id",
        customer,
    )
    assert [(r["outcome"], r["detail"]) for r in log] == [
        ("cancelled", "ordered"),
        ("cancelled", "ordered"),
        ("sent", None),
    ]
    assert sorted(outcomes_of(published)) == [
        ("notification.sent", "customer.signed_up", None),
        ("notification.suppressed", "cart.abandoned", "ordered"),
        ("notification.suppressed", "cart.abandoned", "ordered"),
    ]
    assert rows[0]["trigger"] == "customer.signed_up"


async def test_cap_of_two_a_week_suppresses_the_third_marketing_message_with_its_reason(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customer = notify_customer()
    email = f"{customer}@mail.example"
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.notifications") as events:
        await sign_up_with_cart(producer, db, customer, email)
        await run_due(T0 + timedelta(hours=1, minutes=1))  # welcome + first reminder
        await run_due(T0 + timedelta(hours=24, minutes=1))  # second reminder
        later = T0 + timedelta(days=2)
        await publish(producer, "shop.carts", cart_abandoned(customer, later))
        await eventually(lambda: scheduled(db, customer), lambda rows: len(rows) == 5)
        third = await run_due(later + timedelta(hours=1, minutes=1))
        published = await events.collect(lambda r: r.key == customer.encode(), count=4)

    assert third["suppressed"] >= 1
    subjects = [m.message["Subject"] for m in smtp.to(email)]
    assert len(subjects) == 3  # the welcome is transactional: it does not count
    assert outcomes_of(published) == [
        ("notification.sent", "customer.signed_up", None),
        ("notification.sent", "cart.abandoned", None),
        ("notification.sent", "cart.abandoned", None),
        ("notification.suppressed", "cart.abandoned", "frequency_cap"),
    ]


async def test_quiet_hours_defer_to_the_morning_in_the_customers_time_zone(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    saigon, new_york = notify_customer(), notify_customer()
    evening = datetime(2031, 6, 1, 14, 30, tzinfo=UTC)  # 21:30 in Saigon, 10:30 in New York
    for customer, zone in ((saigon, "Asia/Ho_Chi_Minh"), (new_york, "America/New_York")):
        await publish(
            producer,
            "shop.customers",
            signed_up(customer, evening, email=f"{customer}@mail.example", time_zone=zone),
        )
    for customer in (saigon, new_york):
        await eventually(partial(scheduled, db, customer), lambda rows: len(rows) == 1)

    await run_due(evening + timedelta(minutes=1))
    deferred = await scheduled(db, saigon)
    morning = datetime(2031, 6, 2, 1, 0, tzinfo=UTC)  # 08:00 in Saigon
    await run_due(morning - timedelta(minutes=1))
    before_morning = len(smtp.to(f"{saigon}@mail.example"))
    await run_due(morning)

    assert len(smtp.to(f"{new_york}@mail.example")) == 1
    assert deferred[0]["status"] == "pending"
    assert deferred[0]["due_at"] == morning
    assert before_morning == 0
    assert len(smtp.to(f"{saigon}@mail.example")) == 1
    log = await db.fetch(
        "SELECT outcome FROM notify.delivery_log WHERE customer_id = $1 ORDER BY id", saigon
    )
    assert [r["outcome"] for r in log] == ["deferred", "sent"]

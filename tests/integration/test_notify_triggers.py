"""Tier, points, birthday and win-back messages from their events and from the calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import (
    RunDue,
    SmtpInbox,
    earned,
    event_of,
    notify_customer,
    order_placed,
    signed_up,
)
from support import encoded, eventually

from shared.events import CloudEvent
from shared.runtime import Runtime

T0 = datetime(2031, 9, 7, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City


async def publish(producer: AIOKafkaProducer, topic: str, event: CloudEvent[Any]) -> None:
    await producer.send_and_wait(topic, encoded(event), key=event.subject.encode())


async def rows(db: asyncpg.Pool, customer: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM notify.scheduled WHERE customer_id = $1 ORDER BY id", customer
    )


async def member(
    producer: AIOKafkaProducer, db: asyncpg.Pool, *, locale: str = "en-US", **kw: Any
) -> str:
    customer = notify_customer()
    event = signed_up(customer, T0, email=f"{customer}@mail.example", locale=locale, **kw)
    await publish(producer, "shop.customers", event)
    await eventually(lambda: rows(db, customer), lambda found: len(found) == 1)
    return customer


async def test_tier_upgrade_lists_the_new_benefits_and_the_balance(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customer = await member(producer, db)
    await publish(producer, "loyalty.points", earned(customer, 1200, 1200, T0))
    change = {
        "customer_id": customer,
        "from_tier": "silver",
        "to_tier": "gold",
        "direction": "up",
        "reason": "qualified",
        "qualifying_amount": "5000000",
        "basis": "spend",
        "currency": "VND",
        "effective_at": T0.isoformat(),
        "tier_name": "Gold",
        "benefits": ["Free shipping on every order", "1.5x points"],
    }
    await publish(producer, "loyalty.tiers", event_of("tier.changed", customer, change, T0))
    await eventually(lambda: rows(db, customer), lambda found: len(found) == 3)

    await run_due(T0 + timedelta(minutes=1))

    subjects = {m.message["Subject"]: m for m in smtp.to(f"{customer}@mail.example")}
    upgrade = subjects["Congratulations Nguyễn Văn An: you are now Gold"]
    for part in (upgrade.part("plain"), upgrade.part("html")):
        assert "Free shipping on every order" in part
        assert "1.5x points" in part
        assert "1,200" in part


async def test_tier_at_risk_says_what_keeps_it_and_by_when_and_a_downgrade_is_told(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customer = await member(producer, db, locale="vi-VN")
    risk = {
        "customer_id": customer,
        "tier": "gold",
        "needed_amount": "1500000",
        "basis": "spend",
        "currency": "VND",
        "deadline": "2031-09-30T17:00:00+00:00",
    }
    down = {
        "customer_id": customer,
        "from_tier": "gold",
        "to_tier": "silver",
        "direction": "down",
        "reason": "window ended",
        "qualifying_amount": "100000",
        "basis": "spend",
        "currency": "VND",
        "effective_at": T0.isoformat(),
        "tier_name": "Bạc",
    }
    await publish(producer, "loyalty.tiers", event_of("tier.at_risk", customer, risk, T0))
    await publish(producer, "loyalty.tiers", event_of("tier.changed", customer, down, T0))
    await eventually(lambda: rows(db, customer), lambda found: len(found) == 3)

    await run_due(T0 + timedelta(minutes=1))

    texts = {m.message["Subject"]: m.part("plain") for m in smtp.to(f"{customer}@mail.example")}
    at_risk = next(t for s, t in texts.items() if s.startswith("Nguyễn Văn An ơi, giữ hạng"))
    assert "1.500.000\xa0₫" in at_risk
    assert "30 tháng 9, 2031" in at_risk
    assert "Nguyễn Văn An ơi, hạng thành viên của bạn hiện là Bạc" in texts


async def test_points_digest_is_at_most_one_a_day_and_adds_up_the_days_credits(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customer = await member(producer, db)
    await publish(producer, "loyalty.points", earned(customer, 25, 25, T0))
    await publish(producer, "loyalty.points", earned(customer, 40, 65, T0 + timedelta(minutes=5)))
    next_day = T0 + timedelta(days=1)
    await publish(producer, "loyalty.points", earned(customer, 10, 75, next_day))
    expiring = {
        "customer_id": customer,
        "points": 30,
        "expires_at": "2031-10-01T00:00:00+00:00",
        "balance": 75,
    }
    await publish(
        producer, "loyalty.points", event_of("points.expiring", customer, expiring, next_day)
    )
    await eventually(lambda: rows(db, customer), lambda found: len(found) == 4)

    await run_due(T0 + timedelta(hours=2))
    first_day = [m.message["Subject"] for m in smtp.to(f"{customer}@mail.example")]
    await run_due(next_day + timedelta(hours=2))
    subjects = [m.message["Subject"] for m in smtp.to(f"{customer}@mail.example")]

    assert "Nguyễn Văn An, you earned 65 points today" in first_day
    assert [s for s in subjects if "points today" in s] == [
        "Nguyễn Văn An, you earned 65 points today",
        "Nguyễn Văn An, you earned 10 points today",
    ]
    assert "Nguyễn Văn An, 30 points expire on October 1, 2031" in subjects


async def test_birthday_greeting_with_voucher_once_on_the_local_day(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    customer = await member(producer, db, birthday="1990-09-08")
    eve = datetime(2031, 9, 7, 12, 0, tzinfo=UTC)  # 19:00 on the 7th in Saigon
    morning = datetime(2031, 9, 8, 2, 0, tzinfo=UTC)  # 09:00 on the 8th in Saigon

    await run_due(eve)
    before = [m.message["Subject"] for m in smtp.to(f"{customer}@mail.example")]
    await run_due(morning)
    await run_due(morning + timedelta(hours=3))
    greetings = [
        m for m in smtp.to(f"{customer}@mail.example") if "birthday" in m.message["Subject"]
    ]

    assert not [s for s in before if "birthday" in s]
    assert len(greetings) == 1
    assert "voucher BIRTHDAY" in greetings[0].part("plain")


async def test_win_back_after_180_days_with_a_coupon_only_for_one_time_buyers(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    once, twice, recent = [await member(producer, db) for _ in range(3)]
    await publish(producer, "shop.orders", order_placed(once, T0))
    for at in (T0, T0 + timedelta(days=1)):
        await publish(producer, "shop.orders", order_placed(twice, at))
    await publish(producer, "shop.orders", order_placed(recent, T0 + timedelta(days=100)))
    await eventually(
        lambda: db.fetch(
            "SELECT 1 FROM notify.orders WHERE customer_id = ANY($1::text[])",
            [once, twice, recent],
        ),
        lambda found: len(found) == 4,
    )

    await run_due(T0 + timedelta(days=182))

    def winback(customer: str) -> list[str]:
        return [
            m.part("plain")
            for m in smtp.to(f"{customer}@mail.example")
            if m.message["Subject"] == "Nguyễn Văn An, we miss you"
        ]

    [once_text], [twice_text] = winback(once), winback(twice)
    assert "coupon WELCOMEBACK for orders above ₫300,000" in once_text
    assert "best sellers" in twice_text and "coupon" not in twice_text
    assert winback(recent) == []

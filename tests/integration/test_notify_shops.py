"""Two shops, the same customer ids: each shop's own sender, links, language, template, cap and
consent, through real Kafka and a real SMTP server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from notify_support import (
    Captured,
    RunDue,
    SmtpInbox,
    cart_abandoned,
    notify_customer,
    order_placed,
    signed_up,
)
from support import TopicTail, encoded, eventually

from services.notify.bootstrap import make_shop_messages
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from shared.events import CloudEvent
from shared.runtime import Runtime

# 10:00 in Ho Chi Minh City: outside every shop's quiet hours.
T0 = datetime(2031, 10, 5, 3, 0, tzinfo=UTC)

LOTUS, SEN = "lotus-tea", "sen-ceramics"

LOTUS_MESSAGES = '''
sender_name = "Lotus Tea"
sender_address = "hello@lotus.example"
storefront_url = "https://lotus.example"
default_locale = "en-US"
frequency_cap = 1

[templates.en.welcome]
txt = """
{% block subject %}A cup of Lotus for you, {{ name }}{% endblock %}
{% block body %}
Steep your first order at {{ shop_url }}/teas.

Unsubscribe: {{ unsubscribe_url }}
{% endblock %}
{% block push_title %}Lotus Tea{% endblock %}
{% block push_body %}Welcome{% endblock %}
"""
'''

SEN_MESSAGES = """
sender_name = "Gốm Sen"
sender_address = "xin-chao@sen.example"
storefront_url = "https://sen.example"
default_locale = "vi-VN"
frequency_cap = 2
"""


@pytest.fixture(scope="module")
def shops(notify_settings: NotifySettings) -> ShopMessageSettings:
    book = make_shop_messages(notify_settings)
    book.put_toml(LOTUS, LOTUS_MESSAGES)
    book.put_toml(SEN, SEN_MESSAGES)
    return book


async def publish(producer: AIOKafkaProducer, topic: str, event: CloudEvent[Any]) -> None:
    await producer.send_and_wait(topic, encoded(event), key=event.subject.encode())


async def scheduled(db: asyncpg.Pool, customer: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM notify.scheduled WHERE customer_id = $1 ORDER BY shop_id, due_at, id",
        customer,
    )


async def member_of_both_with_carts(producer: AIOKafkaProducer, db: asyncpg.Pool) -> str:
    """A customer id that signs up at both shops (a locale neither ships: each shop's default
    applies) and leaves a cart at each, the two shops' events interleaved on one key."""
    customer = notify_customer()
    email = f"{customer}@mail.example"
    for shop in (LOTUS, SEN):
        event = signed_up(customer, T0, email=email, locale="fr-FR", shop_id=shop)
        await publish(producer, "shop.customers", event)
    for shop in (LOTUS, SEN):
        cart = cart_abandoned(customer, T0, shop_id=shop, cart_url=f"https://{shop}.example/c")
        await publish(producer, "shop.carts", cart)
    await eventually(lambda: scheduled(db, customer), lambda rows: len(rows) == 6)
    return customer


def sender(message: Captured) -> str:
    return str(message.message["From"])


def by_shop(messages: list[Captured]) -> dict[str, list[Captured]]:
    found: dict[str, list[Captured]] = {"lotus": [], "sen": []}
    for message in messages:
        found["lotus" if "lotus.example" in sender(message) else "sen"].append(message)
    return found


async def statuses(db: asyncpg.Pool, customer: str) -> dict[tuple[str, int], str]:
    """(shop, reminder step) -> status of the customer's cart reminders."""
    return {
        (r["shop_id"], json.loads(r["payload"])["step"]): r["status"]
        for r in await scheduled(db, customer)
        if r["trigger"] == "cart.abandoned"
    }


async def test_each_shop_sends_the_same_customer_its_own_sender_links_language_and_template(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    shops: ShopMessageSettings,
    infrastructure: Endpoints,
) -> None:
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.notifications") as events:
        customers = [await member_of_both_with_carts(producer, db) for _ in range(2)]
        await run_due(T0 + timedelta(minutes=61), shops=shops)
        published = await events.collect(
            lambda r: r.key in {c.encode() for c in customers}, count=8
        )

    for customer in customers:
        mail = by_shop(smtp.to(f"{customer}@mail.example"))
        assert [sender(m) for m in mail["lotus"]] == ["Lotus Tea <hello@lotus.example>"] * 2
        assert [sender(m) for m in mail["sen"]] == ["Gốm Sen <xin-chao@sen.example>"] * 2
        lotus_welcome, lotus_cart = mail["lotus"]
        sen_welcome, sen_cart = mail["sen"]
        # Lotus: its own welcome template, in its default language (English), its links.
        assert lotus_welcome.message["Subject"] == "A cup of Lotus for you, Nguyễn Văn An"
        assert "https://lotus.example/teas" in lotus_welcome.part("plain")
        assert 'href="https://lotus.example"' in lotus_welcome.part("html")
        assert lotus_cart.message["Subject"] == "Nguyễn Văn An, your cart is waiting"
        assert "https://lotus-tea.example/c" in lotus_cart.part("plain")
        # Sen: the shipped templates in its default language (Vietnamese), its links.
        assert sen_welcome.message["Subject"] == "Chào mừng Nguyễn Văn An!"
        assert "https://sen.example" in sen_welcome.part("plain")
        assert "lotus" not in sen_welcome.part("plain") + sen_welcome.part("html")
        assert "https://sen-ceramics.example/c" in sen_cart.part("plain")
        for message in mail["lotus"]:
            assert message.message_id.endswith("@lotus.example>")
            assert message.message["Content-Language"] == "en"
        for message in mail["sen"]:
            assert message.message_id.endswith("@sen.example>")
            assert message.message["Content-Language"] == "vi"
        profiles = await db.fetch(
            "SELECT shop_id FROM notify.customers WHERE customer_id = $1 ORDER BY shop_id",
            customer,
        )
        assert [p["shop_id"] for p in profiles] == [LOTUS, SEN]
    sent = [json.loads(r.value) for r in published]
    assert {(e["type"], e["data"]["shop_id"]) for e in sent} == {
        ("notification.sent", LOTUS),
        ("notification.sent", SEN),
    }
    assert sorted(e["data"]["shop_id"] for e in sent) == [LOTUS] * 4 + [SEN] * 4


async def test_a_frequency_cap_at_one_shop_does_not_suppress_the_other_shops_message(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    shops: ShopMessageSettings,
) -> None:
    customer = await member_of_both_with_carts(producer, db)

    await run_due(T0 + timedelta(minutes=61), shops=shops)
    first = await statuses(db, customer)
    await run_due(T0 + timedelta(hours=24, minutes=1), shops=shops)

    # The first reminders: one marketing message at each shop, neither counted at the other.
    assert (first[LOTUS, 1], first[SEN, 1]) == ("sent", "sent")
    # The second: Lotus's cap of one is reached; Sen's cap of two is not.
    assert await statuses(db, customer) == {
        (LOTUS, 1): "sent",
        (LOTUS, 2): "suppressed",
        (SEN, 1): "sent",
        (SEN, 2): "sent",
    }
    mail = by_shop(smtp.to(f"{customer}@mail.example"))
    assert (len(mail["lotus"]), len(mail["sen"])) == (2, 3)
    reason = await db.fetchval(
        """SELECT detail FROM notify.delivery_log
           WHERE shop_id = $1 AND customer_id = $2 AND outcome = 'suppressed'""",
        LOTUS,
        customer,
    )
    assert reason == "frequency_cap"


async def test_unsubscribing_at_one_shop_leaves_the_customer_subscribed_at_the_other(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    shops: ShopMessageSettings,
) -> None:
    customer = await member_of_both_with_carts(producer, db)
    await run_due(T0 + timedelta(minutes=61), shops=shops)
    sen_cart = by_shop(smtp.to(f"{customer}@mail.example"))["sen"][1]
    url = urlsplit(sen_cart.message["List-Unsubscribe"].strip("<>"))

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=notify[0]), base_url="https://notify.shop.example"
    ) as client:
        # The shop is the link's: a request naming another shop changes nothing there.
        answer = await client.post(f"{url.path}?{url.query}", headers={"X-Shop-Id": LOTUS})
    await run_due(T0 + timedelta(hours=24, minutes=1), shops=shops)

    assert answer.status_code == 200
    consent = await db.fetch(
        """SELECT shop_id, consent_email, unsubscribed_email_at IS NOT NULL AS left
           FROM notify.customers WHERE customer_id = $1 ORDER BY shop_id""",
        customer,
    )
    assert [tuple(r) for r in consent] == [(LOTUS, True, False), (SEN, False, True)]
    # Lotus's second reminder is over its cap of one; Sen's is refused as unsubscribed.
    details = await db.fetch(
        """SELECT shop_id, detail FROM notify.delivery_log
           WHERE customer_id = $1 AND outcome = 'suppressed' ORDER BY shop_id""",
        customer,
    )
    assert [tuple(r) for r in details] == [(LOTUS, "frequency_cap"), (SEN, "unsubscribed")]


async def test_an_order_at_one_shop_cancels_that_shops_cart_reminders_only(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    shops: ShopMessageSettings,
) -> None:
    customer = await member_of_both_with_carts(producer, db)
    # Order ids are the shops' own: Sen's order (before the cart, so it cancels nothing) and
    # Lotus's (after it) share one id and are two orders.
    order_id = f"o-{customer}"
    for shop, at in ((SEN, T0 - timedelta(hours=1)), (LOTUS, T0 + timedelta(minutes=10))):
        order = order_placed(customer, at, shop_id=shop, order_id=order_id)
        await publish(producer, "shop.orders", order)

    async def cancelled() -> dict[tuple[str, int], str]:
        return await statuses(db, customer)

    await eventually(cancelled, lambda found: found[LOTUS, 1] == "cancelled")
    await run_due(T0 + timedelta(minutes=61), shops=shops)

    assert await statuses(db, customer) == {
        (LOTUS, 1): "cancelled",
        (LOTUS, 2): "cancelled",
        (SEN, 1): "sent",
        (SEN, 2): "pending",
    }
    mail = by_shop(smtp.to(f"{customer}@mail.example"))
    assert (len(mail["lotus"]), len(mail["sen"])) == (1, 2)  # two welcomes, Sen's reminder

"""Shops made from the vn-fashion and us-shop templates by the shops service: their published
messages settings reach a running notify through loyalty.shops, and each shop's customer (the
same customer id at both) gets that shop's email, through real Kafka and a real SMTP server. A
version published to take effect later takes over at that time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from notify_support import Captured, RunDue, SmtpInbox, cart_abandoned, notify_customer, signed_up
from shops_support import ShopsService, shops_service
from support import encoded, eventually, own_groups, running, unique

from services.notify.bootstrap import bootstrap as notify_bootstrap
from services.notify.bootstrap import make_shop_messages
from services.notify.commands import run_due_once
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from shared.events import CloudEvent
from shared.runtime import Runtime

# 10:00 in Ho Chi Minh City, the customers' time zone: outside every shop's quiet hours. The
# templates' versions take effect when the shops are made, before T0; the earliest would cover
# an earlier time anyway.
T0 = datetime(2031, 10, 5, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def shops(infrastructure: Endpoints) -> AsyncIterator[ShopsService]:
    async with shops_service(infrastructure) as service:
        yield service


@pytest.fixture(scope="module")
def book(notify_settings: NotifySettings) -> ShopMessageSettings:
    """The messages settings of the module's notify (what its worker sends with)."""
    return make_shop_messages(notify_settings)


@pytest.fixture(scope="module")
async def notify(
    notify_settings: NotifySettings, book: ShopMessageSettings
) -> AsyncIterator[tuple[AsgiFastStream, Runtime]]:
    """The notify service started for the module, over `book` (run_due's service too)."""
    settings = notify_settings.model_copy(update={"consumer_group_prefix": own_groups()})
    app, runtime = notify_bootstrap(settings, shops=book)
    async with running(app, runtime):
        yield app, runtime


async def publish(producer: AIOKafkaProducer, topic: str, event: CloudEvent[Any]) -> None:
    await producer.send_and_wait(topic, encoded(event), key=event.subject.encode())


async def scheduled(db: asyncpg.Pool, customer: str, count: int) -> None:
    async def rows() -> int:
        found = await db.fetchval(
            "SELECT count(*) FROM notify.scheduled WHERE customer_id = $1", customer
        )
        return int(found)

    await eventually(rows, lambda n: n >= count)


async def sender_of(book: ShopMessageSettings, shop: str, at: datetime) -> str:
    return book.for_shop(shop, at).sender_address


async def mail_to(smtp: SmtpInbox, address: str, count: int) -> list[Captured]:
    async def found() -> list[Captured]:
        return smtp.to(address)

    return await eventually(found, lambda got: len(got) >= count)


async def test_each_shop_made_from_a_template_sends_its_customer_that_shops_email(
    shops: ShopsService,
    book: ShopMessageSettings,
    run_due: RunDue,
    smtp: SmtpInbox,
    producer: AIOKafkaProducer,
    notify: tuple[AsgiFastStream, Runtime],
    db: asyncpg.Pool,
) -> None:
    vn, us = unique("vn"), unique("us")
    await shops.new_shop(vn, "vn-fashion")
    await shops.new_shop(us, "us-shop")
    await eventually(lambda: sender_of(book, vn, T0), lambda a: a == "khachhang@thoitrang.example")
    await eventually(lambda: sender_of(book, us, T0), lambda a: a == "rewards@usshop.example")

    customer = notify_customer()  # one id, a customer of each shop
    email = f"{customer}@mail.example"
    for shop in (vn, us):
        # No locale of the customer's own: each shop's default language applies.
        event = signed_up(customer, T0, email=email, locale="fr-FR", shop_id=shop)
        await publish(producer, "shop.customers", event)
    await scheduled(db, customer, 2)
    await run_due(T0 + timedelta(minutes=1), shops=book)
    welcomes = await mail_to(smtp, email, 2)

    by_sender = {str(m.message["From"]): m for m in welcomes}
    assert set(by_sender) == {
        "Thời trang <khachhang@thoitrang.example>",
        "US shop <rewards@usshop.example>",
    }
    vn_mail = by_sender["Thời trang <khachhang@thoitrang.example>"]
    us_mail = by_sender["US shop <rewards@usshop.example>"]
    assert vn_mail.message["Content-Language"] == "vi"
    assert us_mail.message["Content-Language"] == "en"
    assert "https://thoitrang.example" in vn_mail.part("plain")
    assert "https://usshop.example" in us_mail.part("plain")
    assert "usshop" not in vn_mail.part("plain") + vn_mail.part("html")
    assert "thoitrang" not in us_mail.part("plain") + us_mail.part("html")


async def test_a_version_published_for_later_takes_over_when_it_takes_effect(
    shops: ShopsService,
    book: ShopMessageSettings,
    run_due: RunDue,
    smtp: SmtpInbox,
    producer: AIOKafkaProducer,
    notify: tuple[AsgiFastStream, Runtime],
    db: asyncpg.Pool,
) -> None:
    shop = unique("us")
    await shops.new_shop(shop, "us-shop")
    await eventually(lambda: sender_of(book, shop, T0), lambda a: a == "rewards@usshop.example")
    switch = T0 + timedelta(minutes=30)
    url = f"/v1/shops/{shop}/programmes/messages/versions"
    current = await shops.api.get(f"{url}/1", headers=shops.platform)
    draft = current.json()["toml"].replace('sender_name = "US shop"', 'sender_name = "US Outlet"')
    published = await shops.api.post(
        url,
        json={"toml": draft, "effective_from": switch.isoformat(), "reason": "rebrand"},
        headers=shops.platform,
    )
    assert published.status_code == 201, published.text
    await eventually(
        lambda: _name_at(book, shop, switch), lambda name: name == "US Outlet", timeout=30
    )

    customer = notify_customer()
    email = f"{customer}@mail.example"
    signed = signed_up(customer, T0, email=email, time_zone="Asia/Ho_Chi_Minh", shop_id=shop)
    await publish(producer, "shop.customers", signed)
    cart = cart_abandoned(customer, T0, shop_id=shop, cart_url="https://usshop.example/cart")
    await publish(producer, "shop.carts", cart)
    await scheduled(db, customer, 3)  # the welcome and two cart reminders
    await run_due(T0 + timedelta(minutes=1), shops=book)  # the welcome, before the switch
    await mail_to(smtp, email, 1)
    await run_due(T0 + timedelta(minutes=61), shops=book)  # the cart reminder, after it
    welcome, reminder = await mail_to(smtp, email, 2)

    assert str(welcome.message["From"]) == "US shop <rewards@usshop.example>"
    assert str(reminder.message["From"]) == "US Outlet <rewards@usshop.example>"
    # Before the switch (and before either version's time) the first version still applies.
    assert book.for_shop(shop, T0 - timedelta(days=365)).sender_name == "US shop"


async def _name_at(book: ShopMessageSettings, shop: str, at: datetime) -> str:
    return book.for_shop(shop, at).sender_name


async def test_run_due_sends_with_the_settings_the_shops_published(
    shops: ShopsService,
    book: ShopMessageSettings,
    notify_settings: NotifySettings,
    smtp: SmtpInbox,
    producer: AIOKafkaProducer,
    notify: tuple[AsgiFastStream, Runtime],
    db: asyncpg.Pool,
) -> None:
    """`loyalty notify run-due` is a process of its own: it reads the shops' settings from
    notify's tables, not from the memory of a running service."""
    shop = unique("vn")
    await shops.new_shop(shop, "vn-fashion")
    await eventually(
        lambda: sender_of(book, shop, T0), lambda a: a == "khachhang@thoitrang.example"
    )
    customer = notify_customer()
    email = f"{customer}@mail.example"
    await publish(producer, "shop.customers", signed_up(customer, T0, email=email, shop_id=shop))
    await scheduled(db, customer, 1)

    outcomes = await run_due_once(notify_settings, T0 + timedelta(minutes=1))

    assert outcomes["sent"] >= 1
    (welcome,) = await mail_to(smtp, email, 1)
    assert str(welcome.message["From"]) == "Thời trang <khachhang@thoitrang.example>"

"""A coalition's account, shared by two member shops: each message comes from the member shop
where it happened (its sender, links, language, consent and profile) and shows the coalition's
balance and tier, through real Kafka, the shop directory's tables and a real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import Captured, RunDue, SmtpInbox, event_of, notify_customer, signed_up
from shops_support import join_coalition
from support import encoded, eventually, unique

from services.notify.adapters.projections import SCHEMA
from services.notify.bootstrap import make_shop_messages
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from shared.events import CloudEvent
from shared.holders import Holders
from shared.runtime import Runtime
from shared.shop_directory import ShopDirectory

# 10:00 in Ho Chi Minh City: outside every shop's quiet hours.
T0 = datetime(2031, 10, 5, 3, 0, tzinfo=UTC)

LOTUS_MESSAGES = """
sender_name = "Lotus Tea"
sender_address = "hello@lotus.example"
storefront_url = "https://lotus.example"
default_locale = "en-US"
"""

SEN_MESSAGES = """
sender_name = "Gốm Sen"
sender_address = "xin-chao@sen.example"
storefront_url = "https://sen.example"
default_locale = "vi-VN"
"""

# The coalition's own settings: a message names a member shop, so none is sent under them.
COALITION_MESSAGES = """
sender_name = "Phố Chợ Rewards"
sender_address = "rewards@phocho.example"
storefront_url = "https://phocho.example"
default_locale = "en-US"
"""


@pytest.fixture(scope="module")
def coalition() -> tuple[str, str, str]:
    """(coalition, lotus, sen): ids of this module's own."""
    return unique("pho-cho"), unique("lotus"), unique("sen")


@pytest.fixture(scope="module")
def shops(notify_settings: NotifySettings, coalition: tuple[str, str, str]) -> ShopMessageSettings:
    coalition_id, lotus, sen = coalition
    book = make_shop_messages(notify_settings)
    book.put_toml(coalition_id, COALITION_MESSAGES)
    book.put_toml(lotus, LOTUS_MESSAGES)
    book.put_toml(sen, SEN_MESSAGES)
    return book


@pytest.fixture(scope="module")
async def holders(
    notify: tuple[AsgiFastStream, Runtime],
    producer: AIOKafkaProducer,
    db: asyncpg.Pool,
    coalition: tuple[str, str, str],
) -> Holders:
    """Both shops join the coalition on loyalty.shops; once the running notify has recorded
    the memberships, the holders a worker loads from notify's tables (as `run-due` does)."""
    coalition_id, *members = coalition

    async def recorded() -> set[str]:
        rows = await db.fetch(
            f"SELECT shop_id FROM {SCHEMA}.shop_memberships WHERE shop_id = ANY($1)", members
        )
        return {r["shop_id"] for r in rows}

    await join_coalition(producer, coalition_id, members, recorded)
    directory = ShopDirectory(SCHEMA)
    async with db.acquire() as conn:
        await directory.load(conn)
    return directory.holders


async def publish(producer: AIOKafkaProducer, topic: str, event: CloudEvent[Any]) -> None:
    await producer.send_and_wait(topic, encoded(event), key=event.subject.encode())


async def scheduled(db: asyncpg.Pool, customer: str, count: int) -> list[asyncpg.Record]:
    async def rows() -> list[asyncpg.Record]:
        return await db.fetch(
            f"SELECT * FROM {SCHEMA}.scheduled WHERE customer_id = $1 ORDER BY shop_id, id",
            customer,
        )

    return await eventually(rows, lambda found: len(found) >= count)


async def customer_of_both(
    producer: AIOKafkaProducer, shops: list[str], *, consent_at: set[str]
) -> str:
    """One customer id signed up at each shop (a locale neither ships: each shop's default
    applies), consenting to email at `consent_at` only."""
    customer = notify_customer()
    for shop in shops:
        event = signed_up(
            customer,
            T0 - timedelta(days=1),
            email=f"{customer}@mail.example",
            locale="fr-FR",
            shop_id=shop,
            consent_email=shop in consent_at,
        )
        await publish(producer, "shop.customers", event)
    return customer


def earned(customer: str, delta: int, balance: int, *, holder: str, at_shop: str) -> Any:
    data = {
        "shop_id": holder,
        "at_shop": at_shop,
        "entry_id": unique("earn"),
        "customer_id": customer,
        "delta": delta,
        "balance_after": balance,
        "reason": "order.paid",
    }
    return event_of("points.earned", customer, data, T0)


def upgraded(customer: str, *, holder: str, at_shop: str) -> Any:
    change = {
        "shop_id": holder,
        "at_shop": at_shop,
        "customer_id": customer,
        "from_tier": "member",
        "to_tier": "gold",
        "direction": "up",
        "reason": "qualified",
        "qualifying_amount": "5000000",
        "basis": "spend",
        "currency": "VND",
        "effective_at": T0.isoformat(),
        "tier_name": "Gold",
        "benefits": ["Free shipping at every Phố Chợ shop"],
    }
    return event_of("tier.changed", customer, change, T0)


def expiring(customer: str, *, holder: str, at_shop: str | None) -> Any:
    data: dict[str, Any] = {
        "shop_id": holder,
        "customer_id": customer,
        "points": 300,
        "expires_at": (T0 + timedelta(days=14)).isoformat(),
        "balance": 2000,
    }
    if at_shop is not None:
        data["at_shop"] = at_shop
    return event_of("points.expiring", customer, data, T0)


def sender(message: Captured) -> str:
    return str(message.message["From"])


async def mail_to(smtp: SmtpInbox, customer: str, count: int) -> list[Captured]:
    async def found() -> list[Captured]:
        return smtp.to(f"{customer}@mail.example")

    return await eventually(found, lambda got: len(got) >= count)


async def test_a_member_shop_sends_its_own_message_with_the_coalitions_balance_and_tier(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    shops: ShopMessageSettings,
    holders: Holders,
    coalition: tuple[str, str, str],
) -> None:
    coalition_id, lotus, sen = coalition
    customer = await customer_of_both(producer, [lotus, sen], consent_at={lotus, sen})
    await scheduled(db, customer, 2)  # the two welcomes
    await run_due(T0, shops=shops, holders=holders)
    await mail_to(smtp, customer, 2)
    # Points earned at Lotus, then at Sen, into the one account; the upgrade came at Sen.
    for event in (
        earned(customer, 1200, 1200, holder=coalition_id, at_shop=lotus),
        earned(customer, 800, 2000, holder=coalition_id, at_shop=sen),
        upgraded(customer, holder=coalition_id, at_shop=sen),
    ):
        await publish(
            producer, "loyalty.tiers" if "tier" in event.type else "loyalty.points", event
        )
    await scheduled(db, customer, 5)  # a digest at each shop, the upgrade at Sen

    await run_due(T0 + timedelta(hours=1, minutes=1), shops=shops, holders=holders)

    mail = (await mail_to(smtp, customer, 5))[2:]
    by_subject = {m.message["Subject"]: m for m in mail}
    upgrade = by_subject["Chúc mừng Nguyễn Văn An: bạn đã lên hạng Gold"]
    assert sender(upgrade) == "Gốm Sen <xin-chao@sen.example>"
    # The coalition's balance, in Sen's language (numbers in the customer's own locale, fr-FR).
    assert "Số điểm hiện có: 2\u202f000" in upgrade.part("plain")
    (lotus_digest,) = [m for m in mail if "lotus" in sender(m)]
    # (The header's narrow no-break space, fr-FR's group separator, arrives as a space.)
    assert lotus_digest.message["Subject"] == "Nguyễn Văn An, you earned 1 200 points today"
    assert "Your balance is now 2\u202f000 points." in lotus_digest.part("plain")
    assert "https://lotus.example" in lotus_digest.part("plain")
    sen_digest = by_subject["Nguyễn Văn An ơi, hôm nay bạn đã tích 800 điểm"]
    assert sender(sen_digest) == "Gốm Sen <xin-chao@sen.example>"
    assert "https://sen.example" in sen_digest.part("plain")
    assert all("phocho" not in sender(m) for m in mail)
    # The balance and tier are the coalition's; the profiles stay the shops'.
    points = await db.fetch(
        f"SELECT shop_id, balance FROM {SCHEMA}.points WHERE customer_id = $1", customer
    )
    assert [tuple(r) for r in points] == [(coalition_id, 2000)]
    tiers = await db.fetch(
        f"SELECT shop_id, tier FROM {SCHEMA}.tiers WHERE customer_id = $1", customer
    )
    assert [tuple(r) for r in tiers] == [(coalition_id, "gold")]
    senders = await db.fetch(
        f"""SELECT DISTINCT shop_id FROM {SCHEMA}.scheduled
            WHERE customer_id = $1 ORDER BY shop_id""",
        customer,
    )
    assert [r["shop_id"] for r in senders] == sorted([lotus, sen])


async def test_the_member_shops_consent_applies_and_a_message_naming_no_shop_is_not_sent(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    shops: ShopMessageSettings,
    holders: Holders,
    coalition: tuple[str, str, str],
) -> None:
    coalition_id, lotus, sen = coalition
    customer = await customer_of_both(producer, [lotus, sen], consent_at={lotus})
    await scheduled(db, customer, 2)
    for at_shop in (lotus, sen, None):
        event = expiring(customer, holder=coalition_id, at_shop=at_shop)
        await publish(producer, "loyalty.points", event)
    await scheduled(db, customer, 5)

    await run_due(T0 + timedelta(minutes=1), shops=shops, holders=holders)

    mail = await mail_to(smtp, customer, 2)
    assert sorted((sender(m), m.message["Subject"]) for m in mail) == [
        ("Lotus Tea <hello@lotus.example>", "Nguyễn Văn An, 300 points expire on 19 octobre 2031"),
        ("Lotus Tea <hello@lotus.example>", "Welcome, Nguyễn Văn An!"),
    ]
    outcomes = await db.fetch(
        f"""SELECT s.shop_id, s.trigger, s.status, l.detail
            FROM {SCHEMA}.scheduled s
            LEFT JOIN {SCHEMA}.delivery_log l ON l.scheduled_id = s.id
            WHERE s.customer_id = $1 AND s.trigger = 'points.expiring' ORDER BY s.shop_id""",
        customer,
    )
    found = {r["shop_id"]: (r["status"], r["detail"]) for r in outcomes}
    # Sen's customer did not consent to email; the coalition has no customer of its own (no
    # member shop named: no sender, no consent, no profile).
    assert found == {
        lotus: ("sent", None),
        sen: ("suppressed", "no_consent"),
        coalition_id: ("suppressed", "no_consent"),
    }

"""Upgrading notify on a database built by the previous release (tests/release_support.py):
its rows become shop `default`, and its customers get the next event's messages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from babel import Locale
from babel.numbers import format_decimal
from infrastructure import Endpoints
from notify_support import SmtpInbox, event_of
from pydantic import SecretStr
from release_support import migrate
from support import (
    encoded,
    eventually,
    own_groups,
    running,
)

from services.notify.bootstrap import bootstrap as notify_bootstrap
from services.notify.bootstrap import make_worker
from services.notify.domain.tokens import verify_unsubscribe
from services.notify.settings import NotifySettings
from shared.clock import FixedClock

# --- notify ---

NOTIFY_TABLES = (
    "customers",
    "orders",
    "customer_orders",
    "tiers",
    "points",
    "scheduled",
    "delivery_log",
    "received_events",
)


async def notify_rows(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM notify.{t}") for t in NOTIFY_TABLES}


async def test_notify_keeps_every_row_of_the_release_as_shop_default(
    release_database: str, infrastructure: Endpoints
) -> None:
    conn = await asyncpg.connect(release_database)
    try:
        before = await notify_rows(conn)
        await migrate(infrastructure, release_database, "notify")
        after = await notify_rows(conn)
        message_ids = await conn.fetchval(
            "SELECT count(*) = count(DISTINCT message_id) FROM notify.scheduled"
        )
        shops = {
            t: [r["shop_id"] for r in await conn.fetch(f"SELECT DISTINCT shop_id FROM notify.{t}")]
            for t in NOTIFY_TABLES
        }
        keys = await conn.fetch(
            """SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS key
               FROM pg_constraint WHERE connamespace = 'notify'::regnamespace
                 AND contype IN ('p', 'u') AND conrelid::regclass::text <> 'notify.inbox'
                 AND conrelid::regclass::text NOT LIKE 'notify.outbox%'
                 AND conrelid::regclass::text <> 'notify.schema_migrations'"""
        )
    finally:
        await conn.close()

    assert after == before
    assert message_ids is True  # each row its own UUID
    assert before["customers"] > 0 and before["scheduled"] > 0 and before["delivery_log"] > 0
    assert shops == {t: ["default"] for t in NOTIFY_TABLES if after[t]} | {
        t: [] for t in NOTIFY_TABLES if not after[t]
    }
    by_table = {(r["t"], r["key"]) for r in keys}
    assert by_table >= {
        ("notify.customers", "PRIMARY KEY (shop_id, customer_id)"),
        ("notify.orders", "PRIMARY KEY (shop_id, order_id)"),
        ("notify.customer_orders", "PRIMARY KEY (shop_id, customer_id)"),
        ("notify.tiers", "PRIMARY KEY (shop_id, customer_id)"),
        ("notify.points", "PRIMARY KEY (shop_id, customer_id)"),
        ("notify.scheduled", "UNIQUE (shop_id, dedup_key)"),
    }


def next_morning(zone: str | None) -> datetime:
    """10:00 in the zone after the next hour: outside the quiet hours, whatever the date."""
    tz = ZoneInfo(zone or "UTC")
    local = (datetime.now(UTC) + timedelta(hours=1)).astimezone(tz)
    morning = datetime.combine(local.date(), time(10, 0), tzinfo=tz)
    if morning <= local:
        morning = datetime.combine(local.date() + timedelta(days=1), time(10, 0), tzinfo=tz)
    return morning.astimezone(UTC)


@pytest.mark.timeout(120)
async def test_notify_messages_a_customer_of_the_release_on_the_next_event(
    release_database: str,
    infrastructure: Endpoints,
    producer: AIOKafkaProducer,
    notify_settings: NotifySettings,
    smtp: SmtpInbox,
) -> None:
    await migrate(infrastructure, release_database, "notify")
    conn = await asyncpg.connect(release_database)
    try:
        row = await conn.fetchrow(
            """SELECT c.customer_id, c.email, c.time_zone, c.locale, p.balance
               FROM notify.customers c JOIN notify.points p USING (shop_id, customer_id)
               WHERE c.consent_email AND c.email LIKE '%@%.example' AND p.balance > 0
               ORDER BY c.customer_id LIMIT 1"""
        )
        assert row is not None, "the release has a member with points who takes email"
        customer, email, zone, locale, balance = row
        at = next_morning(zone)
        settings = notify_settings.model_copy(
            update={
                "consumer_group_prefix": own_groups(),
                "database_url": SecretStr(release_database),
                "worker_scope": customer,
            }
        )
        app, runtime = notify_bootstrap(settings)
        change = {
            "customer_id": customer,
            "from_tier": "silver",
            "to_tier": "gold",
            "direction": "up",
            "reason": "qualified",
            "qualifying_amount": "5000000",
            "basis": "spend",
            "currency": "VND",
            "effective_at": (at - timedelta(minutes=1)).isoformat(),
            "tier_name": "Gold",
        }
        event = event_of("tier.changed", customer, change, at - timedelta(minutes=1))
        async with running(app, runtime):
            await producer.send_and_wait("loyalty.tiers", encoded(event), key=customer.encode())
            planned = await eventually(
                lambda: conn.fetch(
                    """SELECT shop_id, status FROM notify.scheduled
                       WHERE customer_id = $1 AND dedup_key = $2""",
                    customer,
                    f"tier:{event.id}:email",
                ),
                lambda rows: len(rows) == 1,
            )
            worker = make_worker(runtime.require_pool(), settings, FixedClock(at))
            try:
                await worker.run_due(at)
            finally:
                for channel in worker.deliverer.channels.values():
                    await channel.close()
        tiers = await conn.fetch(
            "SELECT shop_id, tier FROM notify.tiers WHERE customer_id = $1", customer
        )
        sent = await conn.fetchval(
            "SELECT status FROM notify.scheduled WHERE shop_id = 'default' AND dedup_key = $1",
            f"tier:{event.id}:email",
        )
    finally:
        await conn.close()

    assert [tuple(r) for r in planned] == [("default", "pending")]
    assert [tuple(r) for r in tiers] == [("default", "gold")]
    assert sent == "sent"
    mail = [m for m in smtp.to(email) if "Gold" in str(m.message["Subject"])]
    assert len(mail) == 1
    token = mail[0].message["List-Unsubscribe"].strip("<>").partition("token=")[2]
    request = verify_unsubscribe(token, settings.require_secrets())
    assert request is not None and (request.shop_id, request.customer_id) == ("default", customer)
    # The balance the release recorded is the one the message tells.
    told = format_decimal(balance, locale=Locale.parse((locale or "vi-VN").replace("-", "_")))
    assert told in mail[0].part("plain")

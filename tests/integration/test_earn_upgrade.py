"""Upgrading earn on a database built by the previous release (tests/release_support.py): its
rows become shop `default`, balances stay equal to the ledger, and new events apply."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from earn_support import EARN_MIGRATIONS, caught_up_directory
from infrastructure import Endpoints
from pydantic import SecretStr
from release_support import migrate, release_database
from support import consumer_record, database_of_its_own, encoded, order_paid

from services.earn.bootstrap import definition
from services.earn.programme import load_programme
from services.earn.settings import EarnSettings
from shared.clock import FixedClock
from shared.consumer import BatchConsumer
from shared.db import apply_migrations
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS
from shared.runtime import MESSAGING_MIGRATIONS

# --- earn ---------------------------------------------------------------------------------

EARN_TABLES = (
    "accounts",
    "ledger",
    "credit_accounts",
    "customer_tiers",
    "orders",
    "waiting_events",
    "campaign_usage",
    "campaign_totals",
    "punch_cards",
    "memberships",
    "redemptions",
    "idempotency_keys",
    "customers",
    "action_awards",
    "action_counts",
    "expiry_warnings",
    "credit_spends",
)
BALANCES = """SELECT customer_id, points_balance, points_pending, lifetime_earned
              FROM earn.accounts ORDER BY customer_id"""
LEDGER_SUMS = """SELECT a.customer_id, a.points_balance,
                        coalesce(sum(l.delta) FILTER (WHERE l.balance_kind = 'points'), 0) AS total
                 FROM earn.accounts a LEFT JOIN earn.ledger l USING (shop_id, customer_id)
                 GROUP BY a.customer_id, a.points_balance"""


async def test_earn_upgrade_keeps_every_balance_as_shop_default_and_carries_on(
    infrastructure: Endpoints,
) -> None:
    async with release_database(infrastructure) as url:
        db = await asyncpg.connect(url)
        try:
            before = [tuple(r) for r in await db.fetch(BALANCES)]
            entries = await db.fetchval("SELECT count(*) FROM earn.ledger")
            await migrate(infrastructure, url, "earn")

            assert before, "the release's dump holds accounts"
            assert [tuple(r) for r in await db.fetch(BALANCES)] == before
            assert await db.fetchval("SELECT count(*) FROM earn.ledger") == entries
            for row in await db.fetch(LEDGER_SUMS):
                assert row["points_balance"] == row["total"], row["customer_id"]
            for table in EARN_TABLES:
                shops = await db.fetch(f"SELECT DISTINCT shop_id FROM earn.{table}")
                assert {r["shop_id"] for r in shops} <= {"default"}, table
            for table in ("accounts", "ledger", "orders", "customers"):  # never empty here
                shops = await db.fetch(f"SELECT DISTINCT shop_id FROM earn.{table}")
                assert [r["shop_id"] for r in shops] == ["default"], table
            known = await db.fetchrow(
                """SELECT customer_id, points_balance FROM earn.accounts a
                   WHERE NOT EXISTS (SELECT FROM earn.customer_tiers t
                                     WHERE t.customer_id = a.customer_id)
                   ORDER BY customer_id LIMIT 1"""
            )
            assert known is not None, "the release's dump holds a customer without a tier"
            customer, balance = known["customer_id"], known["points_balance"]
            order = await db.fetchrow(
                """SELECT order_id, customer_id, currency, points FROM earn.orders
                   WHERE status = 'available' AND points > 0 AND points_reversed = 0
                     AND customer_id <> $1
                   ORDER BY order_id LIMIT 1""",
                customer,
            )
            assert order is not None, "the release's dump holds an order with points"
            refunded_before = await db.fetchval(
                "SELECT points_balance FROM earn.accounts WHERE customer_id = $1",
                order["customer_id"],
            )

            # A new order of a customer of the release, and a refund of an order it recorded.
            now = datetime.now(UTC)
            await deliver(
                url,
                now,
                order_paid(customer, total="259000", currency="VND", at=now),
                refund(order["customer_id"], order["order_id"], order["currency"], now),
            )

            assert (
                await db.fetchval(
                    "SELECT points_balance FROM earn.accounts WHERE customer_id = $1", customer
                )
                == balance + 25
            )  # VND 259,000 under the shipped programme
            assert (
                await db.fetchval(
                    "SELECT points_balance FROM earn.accounts WHERE customer_id = $1",
                    order["customer_id"],
                )
                == refunded_before - order["points"]
            )
            for row in await db.fetch(LEDGER_SUMS):
                assert row["points_balance"] == row["total"], row["customer_id"]
        finally:
            await db.close()


# The previous release's (afe2a24) balance write, word for word: it names the old key.
RELEASE_BALANCE_WRITE = """
    INSERT INTO earn.accounts AS a (customer_id, points_balance, lifetime_earned, expiry_check_at)
    SELECT c, d, e, CASE WHEN added THEN '-infinity'::timestamptz ELSE 'infinity' END
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::boolean[]) AS u(c, d, e, added)
    ON CONFLICT (customer_id) DO UPDATE
       SET points_balance = a.points_balance + excluded.points_balance,
           lifetime_earned = a.lifetime_earned + excluded.lifetime_earned,
           expiry_check_at = least(a.expiry_check_at, excluded.expiry_check_at),
           updated_at = now()
    RETURNING customer_id, points_balance"""
PRIMARY_KEY = """SELECT pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = 'earn.accounts'::regclass AND contype = 'p'"""


async def test_both_releases_write_during_a_rolling_upgrade_then_the_keys_are_swapped(
    infrastructure: Endpoints,
) -> None:
    async with release_database(infrastructure) as url:
        db = await asyncpg.connect(url)
        try:
            expanded = await migrate(infrastructure, url, "--expand-only")
            customer = await db.fetchval("SELECT min(customer_id) FROM earn.accounts")
            balance = await db.fetchval(
                "SELECT points_balance FROM earn.accounts WHERE customer_id = $1", customer
            )
            # A replica of the previous release still running writes under the old key...
            await db.fetch(RELEASE_BALANCE_WRITE, [customer], [5], [5], [True])
            # ...and one of this release applies an order on the same schema.
            now = datetime.now(UTC)
            await deliver(url, now, order_paid(customer, total="259000", currency="VND", at=now))
            key_while_expanded = await db.fetchval(PRIMARY_KEY)

            contracted = await migrate(infrastructure, url)

            assert (
                await db.fetchval(
                    "SELECT points_balance FROM earn.accounts WHERE customer_id = $1", customer
                )
                == balance + 5 + 25
            )
            assert key_while_expanded == "PRIMARY KEY (customer_id)"
            assert await db.fetchval(PRIMARY_KEY) == "PRIMARY KEY (customer_id, shop_id)"
            assert "(contract)" not in expanded
            for part in (
                "earn/0014_keyed_by_shop.sql (contract)",
                "earn/0017_ids_lead_keys.sql (contract)",
                "tiering/0003_shops.sql (contract)",
                "notify/0003_shops.sql (contract)",
                "analytics/0002_facts_by_shop.sql (contract)",
            ):
                assert part in contracted, contracted
                assert part.removesuffix(" (contract)") in expanded, expanded
        finally:
            await db.close()


# What earn's indexes on its hot tables are, by name, once every contract part ran.
INDEXES = """SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS definition
             FROM pg_index
             WHERE indrelid IN ('earn.accounts'::regclass, 'earn.orders'::regclass,
                                'earn.customers'::regclass, 'earn.ledger'::regclass,
                                'earn.customer_tiers'::regclass)"""


async def test_a_database_keyed_by_shop_first_upgrades_while_both_releases_write(
    infrastructure: Endpoints, tmp_path: Path
) -> None:
    """From the release keyed (shop_id, id) (earn migrations up to 0016) to keys led by the id:
    its balance write names ON CONFLICT (shop_id, customer_id), which finds a key while both
    orders exist and after the swap; nothing is lost or counted twice."""
    shops_release = tmp_path / "migrations"
    shops_release.mkdir()
    for migration in sorted(EARN_MIGRATIONS.glob("*.sql")):
        if migration.name < "0017":
            shutil.copy(migration, shops_release / migration.name)
    components = [("messaging", MESSAGING_MIGRATIONS), ("earn", shops_release)]
    async with database_of_its_own(infrastructure.database_url, "earn_keys") as url:
        db = await asyncpg.connect(url)
        try:
            await apply_migrations(db, "earn", components)
            now = datetime.now(UTC)
            await deliver(url, now, order_paid("c-1", total="259000", currency="VND", at=now))

            components[1] = ("earn", EARN_MIGRATIONS)
            expanded = await apply_migrations(db, "earn", components, contract=False)
            # A replica of either release writes on the expanded schema...
            await deliver(url, now, order_paid("c-1", total="259000", currency="VND", at=now))
            key_while_expanded = await db.fetchval(PRIMARY_KEY)
            contracted = await apply_migrations(db, "earn", components)
            # ...and after the keys were swapped.
            await deliver(url, now, order_paid("c-1", total="259000", currency="VND", at=now))

            assert expanded == ["earn/0017_ids_lead_keys.sql"]
            assert contracted == ["earn/0017_ids_lead_keys.sql (contract)"]
            assert key_while_expanded == "PRIMARY KEY (shop_id, customer_id)"
            assert await db.fetchval(PRIMARY_KEY) == "PRIMARY KEY (customer_id, shop_id)"
            assert (
                await db.fetchval(
                    "SELECT points_balance FROM earn.accounts WHERE customer_id = 'c-1'"
                )
                == 3 * 25
            )
            assert await db.fetchval("SELECT count(*) FROM earn.ledger") == 3
            indexes = {r["name"]: r["definition"] for r in await db.fetch(INDEXES)}
            assert {name: d.split(" USING btree ")[1] for name, d in indexes.items()} == {
                "earn.accounts_pkey": "(customer_id, shop_id)",
                "earn.accounts_of_shop": "(shop_id, customer_id)",
                "earn.accounts_expiry_due": "(expiry_check_at)",
                "earn.orders_pkey": "(order_id, shop_id)",
                "earn.orders_by_customer": "(customer_id, shop_id, paid_at)",
                "earn.orders_due": "(release_at) WHERE (status = 'pending'::text)",
                "earn.customers_pkey": "(customer_id, shop_id)",
                "earn.customers_birthdays_due": (
                    "(next_birthday_at) WHERE (next_birthday_at IS NOT NULL)"
                ),
                "earn.ledger_pkey": "(entry_id)",
                "earn.ledger_by_customer": "(customer_id, shop_id, seq)",
                "earn.ledger_expiring": "(expires_at) WHERE (expires_at IS NOT NULL)",
                "earn.customer_tiers_pkey": "(event_id)",
                "earn.customer_tiers_seq_key": "(seq)",
                "earn.customer_tiers_in_force": (
                    "(customer_id, shop_id, effective_at DESC, seq DESC)"
                ),
            }
        finally:
            await db.close()


def refund(customer: str, order_id: str, currency: str, at: datetime) -> CloudEvent[Any]:
    data = TOPICS["shop.orders"]["order.refunded"].model_validate(
        {
            "order_id": order_id,
            "customer_id": customer,
            "refund": {"amount": "0", "currency": currency},
            "full": True,
        }
    )
    return make_event("order.refunded", source="tests/shop", subject=customer, data=data, time=at)


async def deliver(url: str, now: datetime, *events: CloudEvent[Any]) -> None:
    """Earn of the new release applies `events` of shop.orders to the upgraded database."""
    clock = FixedClock(now)
    settings = EarnSettings(database_url=SecretStr(url))
    service = definition(
        settings, clock=clock, programme=load_programme(), directory=caught_up_directory()
    )
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    try:
        consumer = BatchConsumer(
            service=service.name,
            schema=service.schema,
            topic="shop.orders",
            handler=service.handlers["shop.orders"],
            clock=clock,
        )
        consumer.bind(pool, lambda: None)
        await consumer.process(
            [
                consumer_record(encoded(e), offset=n, key=e.subject.encode())
                for n, e in enumerate(events)
            ]
        )
    finally:
        await pool.close()

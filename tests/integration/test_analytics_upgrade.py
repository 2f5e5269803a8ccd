"""Upgrading analytics on a database built by the previous release (tests/release_support.py):
the reports of shop `default` keep every figure, the programme's facts become shop `default`,
the previous release's writes still work while only the expand part has run, and the next
event applies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from notify_support import event_of
from pydantic import SecretStr
from release_support import migrate
from support import encoded, eventually, own_groups, running, unique

from services.analytics.bootstrap import bootstrap as analytics_bootstrap
from services.analytics.building import build_report
from services.analytics.report import ReportQuery
from services.analytics.settings import AnalyticsSettings

# The reports of shop `default` that the release's code (afe2a24's
# services/analytics/building.py) built from the restored database, before any migration.
RELEASE_REPORTS = (
    Path(__file__).parent.parent / "fixtures" / "release-afe2a24-analytics-reports.json"
)
FACTS = ("members", "tier_changes", "memberships", "points", "notifications")


async def analytics_rows(conn: asyncpg.Connection) -> dict[str, Any]:
    customers = await conn.fetch(
        "SELECT shop_id, count(*) AS n FROM analytics.customers GROUP BY 1 ORDER BY 1"
    )
    return {
        "customers": {r["shop_id"]: r["n"] for r in customers},
        **{t: await conn.fetchval(f"SELECT count(*) FROM analytics.{t}") for t in FACTS},
    }


async def test_analytics_keeps_the_release_figures_of_shop_default(
    release_database: str, infrastructure: Endpoints
) -> None:
    conn = await asyncpg.connect(release_database)
    try:
        before = await analytics_rows(conn)
        await migrate(infrastructure, release_database, "analytics")
        after = await analytics_rows(conn)
        shops = {t: await conn.fetch(f"SELECT DISTINCT shop_id FROM analytics.{t}") for t in FACTS}
        found, expected = [], json.loads(RELEASE_REPORTS.read_text())
        for report in expected:
            query = ReportQuery.model_validate(report["query"])
            point_value = Decimal(report["programme"]["point_value"])
            rebuilt = await build_report(
                conn, "analytics", query, point_value=point_value, now=datetime.now(UTC)
            )
            found.append(rebuilt.model_dump(mode="json", exclude={"generated_at"}))
    finally:
        await conn.close()

    assert after == before
    assert {t: [r["shop_id"] for r in rows] for t, rows in shops.items()} == {
        t: ["default"] for t in FACTS
    }
    assert len(found) == 5 and found[0]["purchases"]["orders"] > 0
    for rebuilt_report, report in zip(found, expected, strict=True):
        assert rebuilt_report == report, report["query"]


async def test_the_release_still_writes_its_facts_while_only_the_expand_part_has_run(
    release_database: str, infrastructure: Endpoints
) -> None:
    await migrate(infrastructure, release_database, "--expand-only", "analytics")
    customer, at = unique("c"), datetime(2026, 12, 1, tzinfo=UTC)
    conn = await asyncpg.connect(release_database)
    try:
        # The previous release's upserts, as afe2a24's services/analytics/adapters/facts.py
        # writes them: they name the old keys and no shop.
        for _ in range(2):
            await conn.execute(
                """INSERT INTO analytics.customers (customer_id, shop_id, signed_up_at)
                   VALUES ($1, 'default', $2)
                   ON CONFLICT (customer_id) DO UPDATE
                       SET signed_up_at = LEAST(customers.signed_up_at, EXCLUDED.signed_up_at)""",
                customer,
                at,
            )
            await conn.execute(
                """INSERT INTO analytics.members (customer_id, joined_at) VALUES ($1, $2)
                   ON CONFLICT (customer_id) DO UPDATE
                       SET joined_at = LEAST(members.joined_at, EXCLUDED.joined_at)""",
                customer,
                at,
            )
        await conn.execute(
            "INSERT INTO analytics.points (entry_id, customer_id, kind, delta, at)"
            " VALUES ($1, $2, 'earned', 5, $3)",
            unique("entry"),
            customer,
            at,
        )
        rows = await conn.fetch(
            """SELECT 'members' AS t, shop_id FROM analytics.members WHERE customer_id = $1
               UNION ALL
               SELECT 'points', shop_id FROM analytics.points WHERE customer_id = $1""",
            customer,
        )
        await migrate(infrastructure, release_database, "analytics")
        contracted = await conn.fetchval(
            """SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'analytics' AND c.relname = 'members' AND i.indisprimary
                 AND i.indnatts = 2"""
        )
    finally:
        await conn.close()

    assert sorted((r["t"], r["shop_id"]) for r in rows) == [
        ("members", "default"),
        ("points", "default"),
    ]
    assert contracted == 1  # the contract part made (shop, customer) the members' key


@pytest.mark.timeout(120)
async def test_analytics_applies_the_next_event_to_a_customer_of_the_release(
    release_database: str, infrastructure: Endpoints, producer: AIOKafkaProducer
) -> None:
    await migrate(infrastructure, release_database, "analytics")
    conn = await asyncpg.connect(release_database)
    try:
        member = await conn.fetchrow(
            """SELECT m.customer_id, m.joined_at FROM analytics.members m
               JOIN analytics.customers c USING (shop_id, customer_id)
               ORDER BY m.customer_id LIMIT 1"""
        )
        assert member is not None
        customer, joined = member["customer_id"], member["joined_at"]
        settings = AnalyticsSettings(
            consumer_group_prefix=own_groups(),
            kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
            database_url=SecretStr(release_database),
            log_format="console",
            batch_timeout_ms=20,
            outbox_idle_poll_s=0.05,
        )
        app, runtime = analytics_bootstrap(settings)
        entry = unique("entry")
        data = {
            "entry_id": entry,
            "customer_id": customer,
            "delta": 70,
            "balance_after": 70,
            "reason": "order.paid",
        }
        earned = event_of("points.earned", customer, data, datetime.now(UTC))
        async with running(app, runtime):
            await producer.send_and_wait("loyalty.points", encoded(earned), key=customer.encode())
            stored = await eventually(
                lambda: conn.fetch(
                    "SELECT shop_id, customer_id, delta FROM analytics.points WHERE entry_id = $1",
                    entry,
                ),
                lambda rows: len(rows) == 1,
            )
        members = await conn.fetch(
            "SELECT shop_id, joined_at FROM analytics.members WHERE customer_id = $1", customer
        )
    finally:
        await conn.close()

    assert [tuple(r) for r in stored] == [("default", customer, 70)]
    assert [tuple(r) for r in members] == [("default", min(joined, earned.time))]

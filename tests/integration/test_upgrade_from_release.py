"""Upgrading a database built by the previous release (afe2a24, migrated and filled by
`loyalty demo`): the migrations run on it, its single-shop data becomes shop `default`, and the
services work on it.

tests/fixtures/release-afe2a24.sql.gz is its pg_dump (plain SQL, PostgreSQL 15,
`--no-owner --no-privileges`); restoring it needs `psql`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
from collections.abc import AsyncIterator
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
from support import (
    database_of_its_own,
    encoded,
    eventually,
    loyalty_command,
    own_groups,
    running,
    unique,
)

from services.analytics.bootstrap import bootstrap as analytics_bootstrap
from services.analytics.building import build_report
from services.analytics.report import ReportQuery
from services.analytics.settings import AnalyticsSettings

FIXTURES = Path(__file__).parent.parent / "fixtures"
RELEASE_DUMP = FIXTURES / "release-afe2a24.sql.gz"


@pytest.fixture
async def release_database(infrastructure: Endpoints) -> AsyncIterator[str]:
    """The URL of a fresh database holding what the release left, not migrated since."""
    async with database_of_its_own(infrastructure.database_url, "loyalty_release") as url:
        done = await asyncio.to_thread(
            subprocess.run,
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
            input=gzip.decompress(RELEASE_DUMP.read_bytes()),
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        yield url


async def migrate(infrastructure: Endpoints, url: str, *services: str) -> None:
    done = await asyncio.to_thread(
        loyalty_command,
        "migrate",
        *services,
        env={
            "LOYALTY_DATABASE_URL": url,
            "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap,
        },
    )
    assert done.returncode == 0, done.stderr


# --- analytics ---

# The reports of shop `default` that the release's code built from the restored data (made
# with afe2a24's services/analytics/building.py, before any migration of this release).
ANALYTICS_REPORTS = FIXTURES / "release-afe2a24-analytics-reports.json"
ANALYTICS_FACTS = ("members", "tier_changes", "memberships", "points", "notifications")


async def analytics_rows(conn: asyncpg.Connection) -> dict[str, Any]:
    customers = await conn.fetch(
        "SELECT shop_id, count(*) AS n FROM analytics.customers GROUP BY 1 ORDER BY 1"
    )
    return {
        "customers": {r["shop_id"]: r["n"] for r in customers},
        **{t: await conn.fetchval(f"SELECT count(*) FROM analytics.{t}") for t in ANALYTICS_FACTS},
    }


async def test_analytics_keeps_the_release_figures_of_shop_default(
    release_database: str, infrastructure: Endpoints
) -> None:
    conn = await asyncpg.connect(release_database)
    try:
        before = await analytics_rows(conn)
        await migrate(infrastructure, release_database, "analytics")
        after = await analytics_rows(conn)
        shops = {
            t: await conn.fetch(f"SELECT DISTINCT shop_id FROM analytics.{t}")
            for t in ANALYTICS_FACTS
        }
        found, expected = [], json.loads(ANALYTICS_REPORTS.read_text())
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
        t: ["default"] for t in ANALYTICS_FACTS
    }
    assert len(found) == 5 and found[0]["purchases"]["orders"] > 0
    for built, report in zip(found, expected, strict=True):
        assert built == report, report["query"]


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

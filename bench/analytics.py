"""Benchmark the analytics report: the time to build it over a history of 1 million orders.

    .venv/bin/python -m bench.analytics --orders 1000000 --customers 100000

Runs against a database of its own (`loyalty_bench_analytics`): the fact tables are filled
straight with SQL (two years of sign-ups, orders with refunds and cancellations, points,
tier changes, messages), then the report of the last twelve months is built several times,
for every customer and for narrower segments, and rendered as text and HTML.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from pydantic import SecretStr

from bench import report
from bench.infra import fresh_database
from services.analytics.bootstrap import SCHEMA, definition
from services.analytics.building import build_report
from services.analytics.rendering.page import render_html
from services.analytics.rendering.sections import render_text
from services.analytics.report import ReportQuery, Segment
from services.analytics.settings import AnalyticsSettings
from shared.logs import configure_logging
from shared.runtime import prepare_database

DATABASE = "loyalty_bench_analytics"
HISTORY_START = "2024-01-01"  # two years of history; the report covers the second
PERIOD = (date(2025, 1, 1), date(2026, 1, 1))

FILL = [
    # Customers signed up over two years, a third of them at a second shop.
    """INSERT INTO analytics.customers (customer_id, shop_id, signed_up_at)
       SELECT 'c-' || n, CASE WHEN n % 3 = 0 THEN 'shop-b' ELSE 'shop-a' END,
              timestamptz '{start}' + random() * interval '700 days'
       FROM generate_series(1, $1) AS n""",
    # Orders after each customer's sign-up: sizes vary, some refunded or cancelled.
    """INSERT INTO analytics.orders (shop_id, order_id, customer_id, currency, total, paid_at,
                                    refunded, fully_refunded, cancelled)
       SELECT c.shop_id, 'o-' || n, c.customer_id, 'VND', round((50 + random() * 2000)) * 1000,
              LEAST(c.signed_up_at + random() * interval '400 days',
                    timestamptz '{start}' + interval '730 days'),
              CASE WHEN n % 20 = 0 THEN 20000 ELSE 0 END, n % 50 = 0, n % 97 = 0
       FROM generate_series(1, $2) AS n
       JOIN analytics.customers c ON c.customer_id = 'c-' || (1 + (n::bigint * 7919) % $1)""",
    """UPDATE analytics.customers c SET first_paid_at = o.first
       FROM (SELECT shop_id, customer_id, min(paid_at) AS first
             FROM analytics.orders GROUP BY 1, 2) o
       WHERE o.shop_id = c.shop_id AND o.customer_id = c.customer_id""",
    # One earning per order; some points spent, some expired.
    """INSERT INTO analytics.points (entry_id, shop_id, customer_id, kind, delta, at)
       SELECT 'earn:' || order_id, shop_id, customer_id, 'earned',
              greatest(total / 10000, 1)::bigint, paid_at
       FROM analytics.orders""",
    """INSERT INTO analytics.points (entry_id, shop_id, customer_id, kind, delta, at)
       SELECT 'use:' || order_id, shop_id, customer_id,
              CASE WHEN random() < 0.7 THEN 'redeemed' ELSE 'expired' END,
              -greatest(total / 30000, 1)::bigint, paid_at + interval '20 days'
       FROM analytics.orders WHERE random() < 0.3""",
    """INSERT INTO analytics.members (shop_id, customer_id, joined_at)
       SELECT shop_id, customer_id, min(at) FROM analytics.points GROUP BY 1, 2""",
    # A third of the customers climb a tier, some of them two.
    """INSERT INTO analytics.tier_changes (event_id, shop_id, customer_id, tier, effective_at)
       SELECT 't1:' || customer_id, shop_id, customer_id, 'silver',
              signed_up_at + interval '60 days'
       FROM analytics.customers WHERE random() < 0.33""",
    """INSERT INTO analytics.tier_changes (event_id, shop_id, customer_id, tier, effective_at)
       SELECT 't2:' || customer_id, shop_id, customer_id, 'gold', effective_at + interval '90 days'
       FROM analytics.tier_changes WHERE random() < 0.3""",
    # Messages: welcome and cart reminders, most sent, some suppressed or failed.
    """INSERT INTO analytics.notifications (event_id, notification_id, shop_id, customer_id,
                                           trigger, channel, outcome, reason, at)
       SELECT 'n:' || n, 'm-' || n, CASE WHEN k % 3 = 0 THEN 'shop-b' ELSE 'shop-a' END,
              'c-' || k,
              (ARRAY['customer.signed_up', 'cart.abandoned', 'winback'])[1 + n % 3], 'email',
              CASE WHEN n % 10 = 0 THEN 'suppressed' WHEN n % 47 = 0 THEN 'failed' ELSE 'sent' END,
              CASE WHEN n % 10 = 0 THEN 'frequency_cap' END,
              timestamptz '{start}' + random() * interval '730 days'
       FROM generate_series(1, $2 / 4) AS n,
            LATERAL (SELECT 1 + (n::bigint * 104729) % $1 AS k) customer""",
]


async def fill(pool: asyncpg.Pool, customers: int, orders: int) -> dict[str, Any]:
    started = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.execute("SELECT setseed(0.42)")
        for statement in FILL:
            sql = statement.format(start=HISTORY_START)
            args = [a for a, p in ((customers, "$1"), (orders, "$2")) if p in sql]
            await conn.execute(sql, *args)
        await conn.execute("VACUUM ANALYZE")  # what autovacuum would soon do anyway
        counts = {
            table: await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.{table}")
            for table in ("customers", "orders", "points", "tier_changes", "notifications")
        }
    return {"rows": counts, "fill_s": round(time.perf_counter() - started, 1)}


async def timed_report(pool: asyncpg.Pool, segment: Segment, runs: int) -> dict[str, Any]:
    query = ReportQuery(
        start=PERIOD[0],
        end=PERIOD[1],
        time_zone="Asia/Ho_Chi_Minh",
        segment=segment,
        churn_after_days=180,
        attribution_days=7,
    )
    times, rendered = [], 0.0
    for _ in range(runs):
        async with pool.acquire() as conn:
            started = time.perf_counter()
            built = await build_report(
                conn, SCHEMA, query, point_value=Decimal(100), now=datetime.now(UTC)
            )
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        render_text(built)
        render_html(built)
        rendered = time.perf_counter() - started
    return {
        "median_s": round(statistics.median(times), 2),
        "max_s": round(max(times), 2),
        "render_s": round(rendered, 3),
        "orders_in_period": built.purchases.orders,
        "customers_at_end": built.retention.customers_at_end,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    url = await fresh_database(DATABASE)
    settings = AnalyticsSettings(database_url=SecretStr(url))
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        await prepare_database(pool, definition(settings))
        figures = await fill(pool, args.customers, args.orders)
        segments = {
            "all_customers": Segment(currency="VND"),
            "tier_gold": Segment(currency="VND", tier="gold"),
            "shop_b": Segment(currency="VND", shop="shop-b"),
            "cohort_2025_03": Segment(currency="VND", cohort="2025-03"),
        }
        for name, segment in segments.items():
            figures[f"report_{name}"] = await timed_report(pool, segment, args.runs)
    finally:
        await pool.close()
    return {"orders": args.orders, "customers": args.customers, **figures}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.analytics", description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="reports built per segment")
    return parser.parse_args()


if __name__ == "__main__":
    configure_logging(fmt="console", level="warning", service="bench")
    arguments = parse_args()
    report.emit("analytics", asyncio.run(main(arguments)))

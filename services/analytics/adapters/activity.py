"""The report's queries over points, tiers, messages and cohorts of the segment (`pop`), each
joining a customer's facts on (shop, customer id), and the account's (points, tiers,
membership of the programme) on (holder, customer id): a coalition member's points are the
entries of the coalition's account made at that shop."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import asyncpg

from services.analytics.adapters.customers import NET, Scope
from shared.db import Connection

# Points carried into a coalition's account (kind `carried`) are neither issued nor taken
# back: they only count in the balance outstanding.
ISSUED = "pt.kind = 'earned' OR (pt.kind = 'adjusted' AND pt.delta > 0)"
TAKEN_BACK = "pt.kind = 'reversed' OR (pt.kind = 'adjusted' AND pt.delta < 0)"
COHORT = "date_trunc('month', p.acquired_at AT TIME ZONE $5)::date"  # the month acquired


async def read_programme(conn: Connection, scope: Scope) -> asyncpg.Record:
    s = scope.schema
    row = await conn.fetchrow(
        f"""SELECT (SELECT count(*) FROM pop) AS customers,
                   (SELECT count(*) FROM pop p JOIN {s}.members m
                        ON m.shop_id = p.holder_id AND m.customer_id = p.customer_id
                    WHERE m.joined_at < $2) AS members,
                   COALESCE(sum(pt.delta) FILTER (WHERE pt.at >= $1 AND ({ISSUED})), 0)
                       AS issued,
                   COALESCE(-sum(pt.delta) FILTER (WHERE pt.at >= $1 AND pt.kind = 'redeemed'),
                            0) AS redeemed,
                   COALESCE(-sum(pt.delta) FILTER (WHERE pt.at >= $1 AND pt.kind = 'expired'),
                            0) AS expired,
                   COALESCE(-sum(pt.delta) FILTER (WHERE pt.at >= $1 AND ({TAKEN_BACK})), 0)
                       AS reversed,
                   COALESCE(sum(pt.delta), 0) AS outstanding
            FROM pop p JOIN {s}.points pt ON {scope.points_of("$3")}
            WHERE pt.at < $2""",
        scope.starts_at,
        scope.ends_at,
        *scope.holder_args(),
    )
    assert row is not None
    return row


async def read_message_outcomes(conn: Connection, scope: Scope) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT n.trigger, n.outcome, n.reason, count(*) AS messages
            FROM pop p JOIN {scope.table("notifications")} n USING (shop_id, customer_id)
            WHERE n.at >= $1 AND n.at < $2 {scope.notifications_of("$3")}
            GROUP BY 1, 2, 3""",
        scope.starts_at,
        scope.ends_at,
        *([] if scope.shop is None else [scope.shop]),
    )


async def read_conversions(conn: Connection, scope: Scope) -> list[asyncpg.Record]:
    """Per trigger: messages sent in the period followed by a counted order within the
    attribution window, and the orders whose last message before them was of that trigger."""
    return await conn.fetch(
        f"""WITH sent AS (
                SELECT n.notification_id, n.shop_id, n.customer_id, n.trigger, n.at
                FROM pop p JOIN {scope.table("notifications")} n USING (shop_id, customer_id)
                WHERE n.outcome = 'sent' AND n.at >= $3 AND n.at < $4
                      {scope.notifications_of("$2")}),
            attributed AS (
                SELECT DISTINCT ON (o.shop_id, o.order_id)
                       sent.notification_id, sent.trigger, {NET} AS net
                FROM sent JOIN {scope.table("orders")} o ON o.shop_id = sent.shop_id
                     AND o.customer_id = sent.customer_id
                     AND o.paid_at > sent.at AND o.paid_at <= sent.at + $5::interval
                     AND {scope.orders_filter()}
                ORDER BY o.shop_id, o.order_id, sent.at DESC, sent.notification_id)
            SELECT trigger, count(DISTINCT notification_id) AS converted,
                   count(*) AS orders, sum(net) AS revenue
            FROM attributed GROUP BY trigger""",
        scope.currency,
        scope.shop,
        scope.starts_at,
        scope.ends_at,
        scope.attribution,
    )


async def read_cohorts(conn: Connection, scope: Scope) -> list[asyncpg.Record]:
    """Per acquisition month in the period and month of order: customers ordering (month NULL:
    the cohort's size)."""
    return await conn.fetch(
        f"""SELECT {COHORT} AS cohort, NULL::date AS month, count(*) AS customers
            FROM pop p WHERE p.acquired_at >= $3 GROUP BY 1
            UNION ALL
            SELECT cohort, month, count(*)
            FROM (  -- each customer once per month of order; pop's key makes the cohort theirs
                SELECT {COHORT} AS cohort,
                       date_trunc('month', o.paid_at AT TIME ZONE $5)::date AS month
                FROM pop p JOIN {scope.table("orders")} o ON o.shop_id = p.shop_id
                     AND o.customer_id = p.customer_id
                     AND o.paid_at < $4 AND {scope.orders_filter()}
                WHERE p.acquired_at >= $3
                GROUP BY p.shop_id, p.customer_id, 2) ordering
            GROUP BY 1, 2""",
        scope.currency,
        scope.shop,
        scope.starts_at,
        scope.ends_at,
        scope.time_zone,
    )


async def read_tiers_by_month(
    conn: Connection, scope: Scope, month_ends: list[datetime]
) -> list[asyncpg.Record]:
    """Customers per tier at each month's end (tier NULL: every customer acquired by then)."""
    return await conn.fetch(
        f"""WITH ends AS (SELECT unnest($1::timestamptz[]) AS month_end),
            spans AS (
                SELECT p.acquired_at, tc.tier, tc.effective_at AS since,
                       lead(tc.effective_at) OVER (
                           PARTITION BY p.shop_id, p.customer_id
                           ORDER BY tc.effective_at, tc.event_id) AS until
                FROM pop p JOIN {scope.schema}.tier_changes tc
                     ON tc.shop_id = p.holder_id AND tc.customer_id = p.customer_id)
            SELECT e.month_end, s.tier, count(*) AS customers
            FROM ends e JOIN spans s ON s.since < e.month_end AND s.acquired_at < e.month_end
                 AND (s.until IS NULL OR s.until >= e.month_end)
            GROUP BY 1, 2
            UNION ALL
            SELECT e.month_end, NULL, count(p.customer_id)
            FROM ends e LEFT JOIN pop p ON p.acquired_at < e.month_end
            GROUP BY 1""",
        month_ends,
    )


async def read_points_by_month(conn: Connection, scope: Scope) -> list[asyncpg.Record]:
    return await read_points_by(conn, scope, "month")


async def read_points_by(
    conn: Connection, scope: Scope, unit: Literal["month", "day"]
) -> list[asyncpg.Record]:
    """Points issued, redeemed and expired in the period per local month or day (`unit`, the
    column's name too), the periods without any left out."""
    return await conn.fetch(
        f"""SELECT date_trunc('{unit}', pt.at AT TIME ZONE $3)::date AS {unit},
                   COALESCE(sum(pt.delta) FILTER (WHERE {ISSUED}), 0) AS issued,
                   COALESCE(-sum(pt.delta) FILTER (WHERE pt.kind = 'redeemed'), 0) AS redeemed,
                   COALESCE(-sum(pt.delta) FILTER (WHERE pt.kind = 'expired'), 0) AS expired
            FROM pop p JOIN {scope.schema}.points pt ON {scope.points_of("$4")}
            WHERE pt.at >= $1 AND pt.at < $2 AND pt.kind <> 'carried'
            GROUP BY 1 ORDER BY 1""",
        scope.starts_at,
        scope.ends_at,
        scope.time_zone,
        *scope.holder_args(),
    )

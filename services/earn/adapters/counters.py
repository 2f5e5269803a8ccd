"""Earn's counters in PostgreSQL: capped campaigns', punch cards' and the action limits',
claimed under row locks in key order."""

from __future__ import annotations

from collections.abc import Sequence

from services.earn.adapters.ledger import SCHEMA
from services.earn.domain.actions import CounterKey
from services.earn.domain.order_batch import CampaignKey, CardKey, UsageKey
from shared.db import Connection


async def lock_campaigns(
    conn: Connection, totals: set[CampaignKey], usage: set[UsageKey]
) -> tuple[dict[CampaignKey, int], dict[UsageKey, int]]:
    """Lock the capped campaigns' totals (in key order: no two batches wait on each other in
    a cycle) until the transaction ends; the bonus points everyone and each customer have had."""
    if not totals:
        return {}, {}
    keys = sorted(totals)
    shops, codes = [k[0] for k in keys], [k[1] for k in keys]
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.campaign_totals (shop_id, campaign, points)
            SELECT s, c, 0 FROM unnest($1::text[], $2::text[]) AS u(s, c)
            ON CONFLICT DO NOTHING""",
        shops,
        codes,
    )
    rows = await conn.fetch(
        f"""SELECT shop_id, campaign, points FROM {SCHEMA}.campaign_totals
            WHERE (shop_id, campaign) IN (SELECT * FROM unnest($1::text[], $2::text[]))
            ORDER BY shop_id, campaign FOR UPDATE""",
        shops,
        codes,
    )
    used = await conn.fetch(
        f"""SELECT shop_id, campaign, customer_id, points FROM {SCHEMA}.campaign_usage
            WHERE (shop_id, campaign, customer_id)
                  IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))""",
        [k[0] for k in usage],
        [k[1] for k in usage],
        [k[2] for k in usage],
    )
    return (
        {(r["shop_id"], r["campaign"]): int(r["points"]) for r in rows},
        {(r["shop_id"], r["campaign"], r["customer_id"]): int(r["points"]) for r in used},
    )


async def record_campaigns(conn: Connection, granted: dict[UsageKey, int]) -> None:
    """Count the bonus points granted, per campaign and customer, in the locked totals."""
    if not granted:
        return
    keys = sorted(granted)
    await conn.execute(
        f"""WITH g AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                       AS g(s, c, cu, p)),
                 t AS (UPDATE {SCHEMA}.campaign_totals ct SET points = ct.points + x.p
                       FROM (SELECT s, c, sum(p) AS p FROM g GROUP BY s, c) x
                       WHERE ct.shop_id = x.s AND ct.campaign = x.c)
            INSERT INTO {SCHEMA}.campaign_usage AS u (shop_id, campaign, customer_id, points)
            SELECT s, c, cu, p FROM g
            ON CONFLICT (shop_id, campaign, customer_id)
            DO UPDATE SET points = u.points + excluded.points""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [granted[k] for k in keys],
    )


async def punch_many(conn: Connection, adds: dict[CardKey, int]) -> dict[CardKey, int]:
    """Add punches per (shop, card, customer), in key order; each count before them."""
    if not adds:
        return {}
    keys = sorted(adds)
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.punch_cards AS p (shop_id, card, customer_id, punches)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
            ON CONFLICT (shop_id, card, customer_id)
            DO UPDATE SET punches = greatest(p.punches + excluded.punches, 0)
            RETURNING shop_id, card, customer_id, punches""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [adds[k] for k in keys],
    )
    return {
        key: int(r["punches"]) - adds[key]
        for r in rows
        if (key := (r["shop_id"], r["card"], r["customer_id"])) in adds
    }


async def unpunch_many(conn: Connection, takes: dict[CardKey, int]) -> None:
    """Take punches back per (shop, card, customer), never below zero, in key order."""
    if not takes:
        return
    keys = sorted(takes)
    await conn.execute(
        f"""UPDATE {SCHEMA}.punch_cards p SET punches = greatest(p.punches - u.n, 0)
            FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(s, c, cu, n)
            WHERE p.shop_id = u.s AND p.card = u.c AND p.customer_id = u.cu""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [takes[k] for k in keys],
    )


async def lock_counters(conn: Connection, keys: Sequence[CounterKey]) -> dict[CounterKey, int]:
    """Create and lock the limit counters (shop, action, customer, period), in key order (no
    deadlock between batches); what each has granted so far."""
    if not keys:
        return {}
    ordered = sorted(set(keys))
    columns = [[k[i] for k in ordered] for i in range(4)]
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.action_counts (shop_id, action, customer_id, period, used)
            SELECT s, a, c, p, 0
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(s, a, c, p)
            ORDER BY s, a, c, p
            ON CONFLICT DO NOTHING""",
        *columns,
    )
    rows = await conn.fetch(
        f"""SELECT n.shop_id, n.action, n.customer_id, n.period, n.used
            FROM {SCHEMA}.action_counts n
            JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(s, a, c, p)
              ON (n.shop_id, n.action, n.customer_id, n.period) = (u.s, u.a, u.c, u.p)
            ORDER BY n.shop_id, n.action, n.customer_id, n.period
            FOR UPDATE OF n""",
        *columns,
    )
    return {(r["shop_id"], r["action"], r["customer_id"], r["period"]): r["used"] for r in rows}


async def save_counters(conn: Connection, used: dict[CounterKey, int]) -> None:
    if not used:
        return
    keys = sorted(used)
    await conn.execute(
        f"""UPDATE {SCHEMA}.action_counts n SET used = u.used
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[])
                 AS u(s, a, c, p, used)
            WHERE (n.shop_id, n.action, n.customer_id, n.period) = (u.s, u.a, u.c, u.p)""",
        *([k[i] for k in keys] for i in range(4)),
        [used[k] for k in keys],
    )

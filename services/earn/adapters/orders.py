"""Earn's record of paid orders, events waiting for their order, campaign caps, punch cards
and memberships, in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from services.earn.adapters.ledger import SCHEMA
from services.earn.adapters.pairs import pair_in
from services.earn.domain.memberships import MembershipRow
from services.earn.domain.order_batch import CampaignKey, CardKey, NewOrder, OrderRow, UsageKey
from shared.db import Connection

_ROW = """shop_id, order_id, customer_id, currency, paid_event_id, paid_at, paid_total, points,
          credit_minor, punches, refunded, points_reversed, credit_reversed, status, release_at,
          holder_id"""


def _order(row: Any) -> OrderRow:
    return OrderRow(**{k: row[k] for k in OrderRow.__slots__})


async def known_orders(conn: Connection, orders: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (shop, order id) earn has recorded."""
    where, args = pair_in("shop_id", "order_id", orders)
    rows = await conn.fetch(
        f"SELECT shop_id, order_id FROM {SCHEMA}.orders WHERE {where}",
        *args,
    )
    asked = set(orders)
    return {key for r in rows if (key := (r["shop_id"], r["order_id"])) in asked}


async def insert_orders(
    conn: Connection, orders: Sequence[NewOrder], *, available: set[tuple[str, str]]
) -> None:
    """Record paid orders: those in `available` (shop, order id) as available already, the
    others pending with their points and credit pending."""
    if not orders:
        return
    # Punch cards are rare: without any, the column is left to its default (an empty array
    # costs asyncpg as much to encode as a timestamp).
    punches = any(o.punches for o in orders)
    columns = [
        "shop_id",
        "order_id",
        "customer_id",
        "currency",
        "paid_event_id",
        "paid_at",
        "paid_total",
        "base_amount",
        "points",
        "credit_minor",
        "breakdown",
        "status",
        "release_at",
    ]
    records: list[tuple[Any, ...]] = [
        (
            o.shop_id,
            o.order_id,
            o.customer_id,
            o.currency,
            o.paid_event_id,
            o.paid_at,
            o.paid_total,
            o.base_amount,
            o.points,
            o.credit_minor,
            to_json(o.breakdown).decode(),  # a sixth of json.dumps's time, per order
            "available" if (o.shop_id, o.order_id) in available else "pending",
            o.release_at,
        )
        for o in orders
    ]
    if punches:
        columns.append("punches")
        records = [(*r, o.punches) for r, o in zip(records, orders, strict=True)]
    # Likewise the holder: NULL (the shop itself) unless a coalition's account earned.
    if any(o.holder_id != o.shop_id for o in orders):
        columns.append("holder_id")
        records = [
            (*r, None if o.holder_id == o.shop_id else o.holder_id)
            for r, o in zip(records, orders, strict=True)
        ]
    await conn.copy_records_to_table("orders", schema_name=SCHEMA, columns=columns, records=records)
    waiting = [o for o in orders if (o.shop_id, o.order_id) not in available]
    await add_pending_points(
        conn, [(o.holder_id, o.customer_id, o.points) for o in waiting if o.points > 0]
    )
    await move_pending_credit(
        conn,
        [
            (o.holder_id, o.customer_id, o.currency, o.credit_minor)
            for o in waiting
            if o.credit_minor
        ],
    )


async def add_pending_points(conn: Connection, moves: Sequence[tuple[str, str, int]]) -> None:
    """Pending points (shop, customer, points) of new orders; the customer's account at the
    shop is created when it has none."""
    totals: dict[tuple[str, str], int] = {}
    for shop, customer, points in moves:
        totals[(shop, customer)] = totals.get((shop, customer), 0) + points
    accounts = sorted(totals)
    if not accounts:
        return
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.accounts AS a (shop_id, customer_id, points_pending)
            SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
            ON CONFLICT (shop_id, customer_id) DO UPDATE
               SET points_pending = a.points_pending + excluded.points_pending,
                   updated_at = now()""",
        [a[0] for a in accounts],
        [a[1] for a in accounts],
        [totals[a] for a in accounts],
    )


async def move_pending_credit(conn: Connection, moves: Sequence[tuple[str, str, str, int]]) -> None:
    """Add (or take) pending store credit: (shop, customer, currency, minor units)."""
    if not moves:
        return
    totals: dict[tuple[str, str, str], int] = {}
    for shop, customer, currency, minor in moves:
        key = (shop, customer, currency)
        totals[key] = totals.get(key, 0) + minor
    keys = sorted(totals)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.credit_accounts AS a
                   (shop_id, customer_id, currency, pending_minor)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
            ON CONFLICT (shop_id, customer_id, currency) DO UPDATE
               SET pending_minor = a.pending_minor + excluded.pending_minor, updated_at = now()""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [totals[k] for k in keys],
    )


async def move_pending_points(conn: Connection, moves: Sequence[tuple[str, str, int]]) -> None:
    """Add (or take) pending points (shop, customer, points) of customers who have an account
    at the shop already."""
    totals: dict[tuple[str, str], int] = {}
    for shop, customer, delta in moves:
        totals[(shop, customer)] = totals.get((shop, customer), 0) + delta
    accounts = sorted(k for k, d in totals.items() if d)
    if not accounts:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.accounts a SET points_pending = a.points_pending + u.d,
                updated_at = now()
            FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(s, c, d)
            WHERE a.shop_id = u.s AND a.customer_id = u.c""",
        [a[0] for a in accounts],
        [a[1] for a in accounts],
        [totals[a] for a in accounts],
    )


async def lock_many(
    conn: Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], OrderRow]:
    """These orders (shop, order id) that are recorded, locked until the transaction ends, in
    key order (no two batches wait on each other in a cycle)."""
    if not keys:
        return {}
    asked = sorted(set(keys))
    rows = await conn.fetch(
        f"""SELECT {_ROW} FROM {SCHEMA}.orders
            WHERE (shop_id, order_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
            ORDER BY shop_id, order_id FOR UPDATE""",
        [shop for shop, _ in asked],
        [order for _, order in asked],
    )
    return {(r["shop_id"], r["order_id"]): _order(r) for r in rows}


async def save_many(
    conn: Connection, orders: Sequence[OrderRow], completed_at: dict[tuple[str, str], datetime]
) -> None:
    """Write what changes may change of these orders; `completed_at` for those completed."""
    if not orders:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.orders o
            SET refunded = u.refunded, points_reversed = u.points_reversed,
                credit_reversed = u.credit_reversed, status = u.status,
                release_at = u.release_at,
                punches = CASE WHEN u.punched THEN o.punches ELSE '{{}}' END,
                completed_at = coalesce(u.completed_at, o.completed_at), updated_at = now()
            FROM unnest($1::text[], $2::text[], $3::numeric[], $4::bigint[], $5::bigint[],
                        $6::text[], $7::timestamptz[], $8::boolean[], $9::timestamptz[])
                 AS u(shop_id, order_id, refunded, points_reversed, credit_reversed, status,
                      release_at, punched, completed_at)
            WHERE o.shop_id = u.shop_id AND o.order_id = u.order_id""",
        [o.shop_id for o in orders],
        [o.order_id for o in orders],
        [o.refunded for o in orders],
        [o.points_reversed for o in orders],
        [o.credit_reversed for o in orders],
        [o.status for o in orders],
        [o.release_at for o in orders],
        [bool(o.punches) for o in orders],  # punches are only ever taken back, all at once
        [completed_at.get((o.shop_id, o.order_id)) for o in orders],
    )


async def take_for_release(
    conn: Connection,
    *,
    orders: Sequence[tuple[str, str]] | None = None,
    shops: Sequence[str] | None = None,
    due_by: datetime,
    limit: int,
) -> list[OrderRow]:
    """Pending orders due by `due_by` (among `orders`, (shop, order id), or of `shops`, when
    given), marked available; rows another replica holds are skipped, so that each order is
    released once."""
    only = ""
    args: list[Any] = [due_by, limit]
    if orders is not None:
        only = "AND (shop_id, order_id) IN (SELECT * FROM unnest($3::text[], $4::text[]))"
        args += [[shop for shop, _ in orders], [order for _, order in orders]]
    elif shops is not None:
        only = "AND shop_id = ANY($3::text[])"
        args.append(list(shops))
    rows = await conn.fetch(
        f"""WITH due AS (
                SELECT shop_id, order_id FROM {SCHEMA}.orders
                WHERE status = 'pending' AND release_at <= $1 {only}
                ORDER BY release_at LIMIT $2 FOR UPDATE SKIP LOCKED)
            UPDATE {SCHEMA}.orders o SET status = 'available', updated_at = now()
            FROM due WHERE o.shop_id = due.shop_id AND o.order_id = due.order_id
            RETURNING {", ".join(f"o.{c.strip()}" for c in _ROW.split(","))}""",
        *args,
    )
    return sorted((_order(r) for r in rows), key=lambda o: (o.release_at, o.shop_id, o.order_id))


async def park_many(
    conn: Connection, waiting: Sequence[tuple[str, str, str, str, datetime, str]]
) -> None:
    """Events (event id, shop, order id, type, occurred at, the event's JSON) that wait for
    their order's payment; each once."""
    if not waiting:
        return
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.waiting_events (event_id, shop_id, order_id, event_type,
                occurred_at, event)
            SELECT e, s, o, t, at, ev::jsonb
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                        $6::text[]) AS u(e, s, o, t, at, ev)
            ON CONFLICT (event_id) DO NOTHING""",
        *([w[i] for w in waiting] for i in range(6)),
    )


async def unpark(conn: Connection, orders: Sequence[tuple[str, str]]) -> list[str]:
    """The waiting events of these orders (shop, order id), oldest first, taken off the
    waiting list."""
    if not orders:
        return []
    rows = await conn.fetch(
        f"""DELETE FROM {SCHEMA}.waiting_events w
            USING unnest($1::text[], $2::text[]) AS u(s, id)
            WHERE w.shop_id = u.s AND w.order_id = u.id
            RETURNING w.event::text AS event, w.occurred_at, w.event_id""",
        [shop for shop, _ in orders],
        [order for _, order in orders],
    )
    return [r["event"] for r in sorted(rows, key=lambda r: (r["occurred_at"], r["event_id"]))]


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


async def record_memberships(
    conn: Connection,
    sales: Sequence[tuple[str, str, str, str, str, datetime, datetime, int]],
) -> set[tuple[str, str, str]]:
    """Record memberships (shop, order, sku, customer, tier, starts, ends, quantity); the
    (shop, order, sku) of those not recorded before."""
    if not sales:
        return set()
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.memberships (shop_id, order_id, sku, customer_id, tier,
                starts_at, ends_at, quantity)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::timestamptz[], $7::timestamptz[], $8::bigint[])
            ON CONFLICT DO NOTHING RETURNING shop_id, order_id, sku""",
        *([sale[i] for sale in sales] for i in range(8)),
    )
    return {(r["shop_id"], r["order_id"], r["sku"]) for r in rows}


async def memberships_of(
    conn: Connection, orders: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[MembershipRow]]:
    """The memberships these orders (shop, order id) paid for, by sku."""
    if not orders:
        return {}
    asked = sorted(set(orders))
    rows = await conn.fetch(
        f"""SELECT shop_id, order_id, {", ".join(MembershipRow.__slots__)}
            FROM {SCHEMA}.memberships
            WHERE (shop_id, order_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
            ORDER BY shop_id, order_id, sku""",
        [shop for shop, _ in asked],
        [order for _, order in asked],
    )
    found: dict[tuple[str, str], list[MembershipRow]] = {}
    for r in rows:
        row = MembershipRow(**{k: r[k] for k in MembershipRow.__slots__})
        found.setdefault((r["shop_id"], r["order_id"]), []).append(row)
    return found


async def refund_memberships(
    conn: Connection, refunds: Sequence[tuple[str, str, str, int, datetime | None]]
) -> None:
    """Record, per (shop, order, sku), the units refunded so far and, when it ended, the
    cancellation time."""
    if not refunds:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.memberships m
            SET refunded_quantity = u.units, cancelled_at = coalesce(m.cancelled_at, u.at)
            FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
                 AS u(shop_id, order_id, sku, units, at)
            WHERE m.shop_id = u.shop_id AND m.order_id = u.order_id AND m.sku = u.sku""",
        *([r[i] for r in refunds] for i in range(5)),
    )


async def points_held(
    conn: Connection, customers: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Per (shop, customer), the most their balance, lifetime total or pending points can reach from
    what is recorded now: the larger of balance and lifetime total, plus pending points."""
    asked = set(customers)
    where, args = pair_in("shop_id", "customer_id", asked)
    rows = await conn.fetch(
        f"""SELECT shop_id, customer_id,
                   GREATEST(points_balance, lifetime_earned)::numeric + points_pending AS held
            FROM {SCHEMA}.accounts WHERE {where}""",
        *args,
    )
    return {key: int(r["held"]) for r in rows if (key := (r["shop_id"], r["customer_id"])) in asked}

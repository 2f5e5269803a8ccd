"""Earn's record of paid orders, events waiting for their order, campaign caps, punch cards
and memberships, in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic_core import to_json

from services.earn.adapters.ledger import SCHEMA
from services.earn.adapters.pairs import pair_in
from shared.db import Connection


@dataclass(slots=True)  # not frozen: one per order, and frozen makes __init__ 3 times slower
class NewOrder:
    shop_id: str
    order_id: str
    customer_id: str
    currency: str
    paid_event_id: str
    paid_at: datetime
    paid_total: Decimal
    base_amount: Decimal
    points: int
    credit_minor: int
    breakdown: dict[str, Any]
    punches: list[str]
    release_at: datetime


@dataclass(frozen=True, slots=True)
class OrderRow:
    shop_id: str
    order_id: str
    customer_id: str
    currency: str
    paid_event_id: str
    paid_at: datetime
    paid_total: Decimal
    points: int
    credit_minor: int
    punches: list[str]
    refunded: Decimal
    points_reversed: int
    credit_reversed: int
    status: str
    release_at: datetime


_ROW = """shop_id, order_id, customer_id, currency, paid_event_id, paid_at, paid_total, points,
          credit_minor, punches, refunded, points_reversed, credit_reversed, status, release_at"""


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
    await conn.copy_records_to_table("orders", schema_name=SCHEMA, columns=columns, records=records)
    waiting = [o for o in orders if (o.shop_id, o.order_id) not in available]
    await add_pending_points(
        conn, [(o.shop_id, o.customer_id, o.points) for o in waiting if o.points > 0]
    )
    await move_pending_credit(
        conn,
        [(o.shop_id, o.customer_id, o.currency, o.credit_minor) for o in waiting if o.credit_minor],
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


async def lock_order(conn: Connection, shop_id: str, order_id: str) -> OrderRow | None:
    row = await conn.fetchrow(
        f"""SELECT {_ROW} FROM {SCHEMA}.orders WHERE shop_id = $1 AND order_id = $2
            FOR UPDATE""",
        shop_id,
        order_id,
    )
    return None if row is None else _order(row)


async def update_order(conn: Connection, order: OrderRow, **changes: Any) -> None:
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=3))
    await conn.execute(
        f"""UPDATE {SCHEMA}.orders SET {sets}, updated_at = now()
            WHERE shop_id = $1 AND order_id = $2""",
        order.shop_id,
        order.order_id,
        *changes.values(),
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


async def park(
    conn: Connection,
    *,
    event_id: str,
    shop_id: str,
    order_id: str,
    event_type: str,
    at: datetime,
    event: str,
) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.waiting_events (event_id, shop_id, order_id, event_type,
                occurred_at, event)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (event_id) DO NOTHING""",
        event_id,
        shop_id,
        order_id,
        event_type,
        at,
        event,
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


async def use_campaign(
    conn: Connection, shop_id: str, campaign: str, customer_id: str
) -> tuple[int, int]:
    """Lock the shop's campaign's counters; the bonus points the customer and everyone have
    had."""
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.campaign_totals (shop_id, campaign, points) VALUES ($1, $2, 0)
            ON CONFLICT DO NOTHING""",
        shop_id,
        campaign,
    )
    total = await conn.fetchval(
        f"""SELECT points FROM {SCHEMA}.campaign_totals
            WHERE shop_id = $1 AND campaign = $2 FOR UPDATE""",
        shop_id,
        campaign,
    )
    mine = await conn.fetchval(
        f"""SELECT points FROM {SCHEMA}.campaign_usage
            WHERE shop_id = $1 AND campaign = $2 AND customer_id = $3""",
        shop_id,
        campaign,
        customer_id,
    )
    return int(mine or 0), int(total)


async def record_campaign(
    conn: Connection, shop_id: str, campaign: str, customer_id: str, points: int
) -> None:
    await conn.execute(
        f"""WITH t AS (UPDATE {SCHEMA}.campaign_totals SET points = points + $3
                       WHERE shop_id = $4 AND campaign = $1)
            INSERT INTO {SCHEMA}.campaign_usage AS u (shop_id, campaign, customer_id, points)
            VALUES ($4, $1, $2, $3)
            ON CONFLICT (shop_id, campaign, customer_id) DO UPDATE SET points = u.points + $3""",
        campaign,
        customer_id,
        points,
        shop_id,
    )


async def punch(conn: Connection, shop_id: str, card: str, customer_id: str, by: int) -> int:
    """Add (or take back) punches; the count after."""
    value = await conn.fetchval(
        f"""INSERT INTO {SCHEMA}.punch_cards AS p (shop_id, card, customer_id, punches)
            VALUES ($4, $1, $2, greatest($3, 0))
            ON CONFLICT (shop_id, card, customer_id)
            DO UPDATE SET punches = greatest(p.punches + $3, 0)
            RETURNING punches""",
        card,
        customer_id,
        by,
        shop_id,
    )
    return int(value)


async def record_membership(
    conn: Connection,
    *,
    shop_id: str,
    order_id: str,
    sku: str,
    customer_id: str,
    tier: str,
    starts_at: datetime,
    ends_at: datetime,
    quantity: int,
) -> bool:
    """False when this order's membership was recorded before."""
    value = await conn.fetchval(
        f"""INSERT INTO {SCHEMA}.memberships (shop_id, order_id, sku, customer_id, tier,
                starts_at, ends_at, quantity)
            VALUES ($8, $1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1""",
        order_id,
        sku,
        customer_id,
        tier,
        starts_at,
        ends_at,
        quantity,
        shop_id,
    )
    return value is not None


@dataclass(frozen=True, slots=True)
class MembershipRow:
    sku: str
    customer_id: str
    tier: str
    starts_at: datetime
    ends_at: datetime
    quantity: int  # units of the SKU the order bought
    refunded_quantity: int  # units refunds have given back so far
    cancelled_at: datetime | None


async def memberships_of(conn: Connection, shop_id: str, order_id: str) -> list[MembershipRow]:
    """The memberships an order of the shop paid for, by sku."""
    rows = await conn.fetch(
        f"""SELECT {", ".join(MembershipRow.__slots__)} FROM {SCHEMA}.memberships
            WHERE shop_id = $1 AND order_id = $2 ORDER BY sku""",
        shop_id,
        order_id,
    )
    return [MembershipRow(**dict(r)) for r in rows]


async def refund_memberships(
    conn: Connection,
    shop_id: str,
    order_id: str,
    refunds: Sequence[tuple[str, int, datetime | None]],
) -> None:
    """Record, per sku, the units refunded so far and, when it ended, the cancellation time."""
    if not refunds:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.memberships m
            SET refunded_quantity = u.units, cancelled_at = coalesce(m.cancelled_at, u.at)
            FROM unnest($2::text[], $3::bigint[], $4::timestamptz[]) AS u(sku, units, at)
            WHERE m.shop_id = $5 AND m.order_id = $1 AND m.sku = u.sku""",
        order_id,
        [r[0] for r in refunds],
        [r[1] for r in refunds],
        [r[2] for r in refunds],
        shop_id,
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

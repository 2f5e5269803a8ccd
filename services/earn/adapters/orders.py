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
from shared.db import Connection


@dataclass(slots=True)  # not frozen: one per order, and frozen makes __init__ 3 times slower
class NewOrder:
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


_ROW = """order_id, customer_id, currency, paid_event_id, paid_at, paid_total, points,
          credit_minor, punches, refunded, points_reversed, credit_reversed, status, release_at"""


def _order(row: Any) -> OrderRow:
    return OrderRow(**{k: row[k] for k in OrderRow.__slots__})


async def known_orders(conn: Connection, order_ids: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        f"SELECT order_id FROM {SCHEMA}.orders WHERE order_id = ANY($1::text[])", list(order_ids)
    )
    return {r["order_id"] for r in rows}


async def insert_orders(
    conn: Connection, orders: Sequence[NewOrder], *, available: set[str]
) -> None:
    """Record paid orders: those in `available` as available already, the others pending with
    their points and credit pending."""
    if not orders:
        return
    # Punch cards are rare: without any, the column is left to its default (an empty array
    # costs asyncpg as much to encode as a timestamp).
    punches = any(o.punches for o in orders)
    columns = [
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
            "available" if o.order_id in available else "pending",
            o.release_at,
        )
        for o in orders
    ]
    if punches:
        columns.append("punches")
        records = [(*r, o.punches) for r, o in zip(records, orders, strict=True)]
    await conn.copy_records_to_table("orders", schema_name=SCHEMA, columns=columns, records=records)
    pending = [o for o in orders if o.order_id not in available and o.points > 0]
    await add_pending_points(conn, [(o.customer_id, o.points) for o in pending])
    credit = [o for o in orders if o.credit_minor > 0 and o.order_id not in available]
    await move_pending_credit(conn, [(o.customer_id, o.currency, o.credit_minor) for o in credit])


async def add_pending_points(conn: Connection, moves: Sequence[tuple[str, int]]) -> None:
    """Pending points of new orders; the customer's account is created when it has none."""
    totals: dict[str, int] = {}
    for customer, points in moves:
        totals[customer] = totals.get(customer, 0) + points
    customers = sorted(totals)
    if not customers:
        return
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.accounts AS a (customer_id, points_pending)
            SELECT * FROM unnest($1::text[], $2::bigint[])
            ON CONFLICT (customer_id) DO UPDATE
               SET points_pending = a.points_pending + excluded.points_pending,
                   updated_at = now()""",
        customers,
        [totals[c] for c in customers],
    )


async def move_pending_credit(conn: Connection, moves: Sequence[tuple[str, str, int]]) -> None:
    if not moves:
        return
    totals: dict[tuple[str, str], int] = {}
    for customer, currency, minor in moves:
        totals[(customer, currency)] = totals.get((customer, currency), 0) + minor
    keys = sorted(totals)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.credit_accounts AS a (customer_id, currency, pending_minor)
            SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
            ON CONFLICT (customer_id, currency) DO UPDATE
               SET pending_minor = a.pending_minor + excluded.pending_minor, updated_at = now()""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [totals[k] for k in keys],
    )


async def move_pending_points(conn: Connection, moves: Sequence[tuple[str, int]]) -> None:
    """Add (or take) pending points of customers who have an account already."""
    totals: dict[str, int] = {}
    for customer, delta in moves:
        totals[customer] = totals.get(customer, 0) + delta
    customers = sorted(c for c, d in totals.items() if d)
    if not customers:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.accounts a SET points_pending = a.points_pending + u.d,
                updated_at = now()
            FROM unnest($1::text[], $2::bigint[]) AS u(c, d) WHERE a.customer_id = u.c""",
        customers,
        [totals[c] for c in customers],
    )


async def lock_order(conn: Connection, order_id: str) -> OrderRow | None:
    row = await conn.fetchrow(
        f"SELECT {_ROW} FROM {SCHEMA}.orders WHERE order_id = $1 FOR UPDATE", order_id
    )
    return None if row is None else _order(row)


async def update_order(conn: Connection, order: OrderRow, **changes: Any) -> None:
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=2))
    await conn.execute(
        f"UPDATE {SCHEMA}.orders SET {sets}, updated_at = now() WHERE order_id = $1",
        order.order_id,
        *changes.values(),
    )


async def take_for_release(
    conn: Connection, *, order_ids: Sequence[str] | None, due_by: datetime, limit: int
) -> list[OrderRow]:
    """Pending orders due by `due_by` (among `order_ids` when given), marked available; rows
    another replica holds are skipped, so that each order is released once."""
    only = "AND order_id = ANY($3::text[])" if order_ids is not None else ""
    args: list[Any] = [due_by, limit] + ([list(order_ids)] if order_ids is not None else [])
    rows = await conn.fetch(
        f"""WITH due AS (
                SELECT order_id FROM {SCHEMA}.orders
                WHERE status = 'pending' AND release_at <= $1 {only}
                ORDER BY release_at LIMIT $2 FOR UPDATE SKIP LOCKED)
            UPDATE {SCHEMA}.orders o SET status = 'available', updated_at = now()
            FROM due WHERE o.order_id = due.order_id
            RETURNING {", ".join(f"o.{c.strip()}" for c in _ROW.split(","))}""",
        *args,
    )
    return sorted((_order(r) for r in rows), key=lambda o: (o.release_at, o.order_id))


async def park(
    conn: Connection, *, event_id: str, order_id: str, event_type: str, at: datetime, event: str
) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.waiting_events (event_id, order_id, event_type, occurred_at,
                event)
            VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (event_id) DO NOTHING""",
        event_id,
        order_id,
        event_type,
        at,
        event,
    )


async def unpark(conn: Connection, order_ids: Sequence[str]) -> list[str]:
    """The waiting events of these orders, oldest first, taken off the waiting list."""
    if not order_ids:
        return []
    rows = await conn.fetch(
        f"""DELETE FROM {SCHEMA}.waiting_events WHERE order_id = ANY($1::text[])
            RETURNING event::text AS event, occurred_at, event_id""",
        list(order_ids),
    )
    return [r["event"] for r in sorted(rows, key=lambda r: (r["occurred_at"], r["event_id"]))]


async def use_campaign(conn: Connection, campaign: str, customer_id: str) -> tuple[int, int]:
    """Lock the campaign's counters; the bonus points the customer and everyone have had."""
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.campaign_totals (campaign, points) VALUES ($1, 0)
            ON CONFLICT DO NOTHING""",
        campaign,
    )
    total = await conn.fetchval(
        f"SELECT points FROM {SCHEMA}.campaign_totals WHERE campaign = $1 FOR UPDATE", campaign
    )
    mine = await conn.fetchval(
        f"""SELECT points FROM {SCHEMA}.campaign_usage
            WHERE campaign = $1 AND customer_id = $2""",
        campaign,
        customer_id,
    )
    return int(mine or 0), int(total)


async def record_campaign(conn: Connection, campaign: str, customer_id: str, points: int) -> None:
    await conn.execute(
        f"""WITH t AS (UPDATE {SCHEMA}.campaign_totals SET points = points + $3
                       WHERE campaign = $1)
            INSERT INTO {SCHEMA}.campaign_usage AS u (campaign, customer_id, points)
            VALUES ($1, $2, $3)
            ON CONFLICT (campaign, customer_id) DO UPDATE SET points = u.points + $3""",
        campaign,
        customer_id,
        points,
    )


async def punch(conn: Connection, card: str, customer_id: str, by: int) -> int:
    """Add (or take back) punches; the count after."""
    value = await conn.fetchval(
        f"""INSERT INTO {SCHEMA}.punch_cards AS p (card, customer_id, punches)
            VALUES ($1, $2, greatest($3, 0))
            ON CONFLICT (card, customer_id) DO UPDATE SET punches = greatest(p.punches + $3, 0)
            RETURNING punches""",
        card,
        customer_id,
        by,
    )
    return int(value)


async def record_membership(
    conn: Connection,
    *,
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
        f"""INSERT INTO {SCHEMA}.memberships (order_id, sku, customer_id, tier, starts_at,
                ends_at, quantity)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1""",
        order_id,
        sku,
        customer_id,
        tier,
        starts_at,
        ends_at,
        quantity,
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


async def memberships_of(conn: Connection, order_id: str) -> list[MembershipRow]:
    """The memberships an order paid for, by sku."""
    rows = await conn.fetch(
        f"""SELECT {", ".join(MembershipRow.__slots__)} FROM {SCHEMA}.memberships
            WHERE order_id = $1 ORDER BY sku""",
        order_id,
    )
    return [MembershipRow(**dict(r)) for r in rows]


async def refund_memberships(
    conn: Connection, order_id: str, refunds: Sequence[tuple[str, int, datetime | None]]
) -> None:
    """Record, per sku, the units refunded so far and, when it ended, the cancellation time."""
    if not refunds:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.memberships m
            SET refunded_quantity = u.units, cancelled_at = coalesce(m.cancelled_at, u.at)
            FROM unnest($2::text[], $3::bigint[], $4::timestamptz[]) AS u(sku, units, at)
            WHERE m.order_id = $1 AND m.sku = u.sku""",
        order_id,
        [r[0] for r in refunds],
        [r[1] for r in refunds],
        [r[2] for r in refunds],
    )


async def points_held(conn: Connection, customer_ids: Sequence[str]) -> dict[str, int]:
    """Per customer, the most their balance, lifetime total or pending points can reach from
    what is recorded now: the larger of balance and lifetime total, plus pending points."""
    rows = await conn.fetch(
        f"""SELECT customer_id,
                   GREATEST(points_balance, lifetime_earned)::numeric + points_pending AS held
            FROM {SCHEMA}.accounts WHERE customer_id = ANY($1::text[])""",
        list(set(customer_ids)),
    )
    return {r["customer_id"]: int(r["held"]) for r in rows}

"""Earn's record of paid orders and of the events waiting for their order, in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from services.earn.adapters.accounts import add_pending_points, move_pending_credit
from services.earn.adapters.ledger import SCHEMA
from services.earn.adapters.pairs import pair_in
from services.earn.domain.order_batch import NewOrder, OrderRow
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
    condition, args = pair_in("shop_id", "order_id", orders)
    rows = await conn.fetch(
        f"""DELETE FROM {SCHEMA}.waiting_events WHERE {condition}
            RETURNING event::text AS event, occurred_at, event_id""",
        *args,
    )
    return [r["event"] for r in sorted(rows, key=lambda r: (r["occurred_at"], r["event_id"]))]

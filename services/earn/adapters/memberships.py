"""Memberships bought with orders and their refunds, in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.earn.adapters.ledger import SCHEMA
from services.earn.domain.memberships import MembershipRow
from shared.db import Connection


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

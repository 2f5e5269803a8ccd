"""Writers of the fact tables: one set-based statement per table and batch, keys in order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from services.analytics.domain.facts import CustomerFact, CustomerKey, OrderFact
from shared.db import Connection


async def save_customers(conn: Connection, schema: str, facts: Iterable[CustomerFact]) -> None:
    # Sorted: concurrent batches (customers and orders topics) lock rows in the same order.
    rows = sorted(facts, key=lambda f: f.key)
    if not rows:
        return
    await conn.execute(
        f"""INSERT INTO {schema}.customers (customer_id, shop_id, signed_up_at, first_paid_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])
            ON CONFLICT (shop_id, customer_id) DO UPDATE SET
                signed_up_at = LEAST(customers.signed_up_at, EXCLUDED.signed_up_at),
                first_paid_at = LEAST(customers.first_paid_at, EXCLUDED.first_paid_at)""",
        [f.customer_id for f in rows],
        [f.shop_id for f in rows],
        [f.signed_up_at for f in rows],
        [f.first_paid_at for f in rows],
    )


async def save_orders(conn: Connection, schema: str, facts: Iterable[OrderFact]) -> None:
    rows = sorted(facts, key=lambda f: (f.shop_id, f.order_id))
    if not rows:
        return
    await conn.execute(
        f"""INSERT INTO {schema}.orders (shop_id, order_id, customer_id, currency, total,
                                         paid_at, refunded, fully_refunded, cancelled)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                 $5::numeric[], $6::timestamptz[], $7::numeric[],
                                 $8::boolean[], $9::boolean[])
            ON CONFLICT (shop_id, order_id) DO UPDATE SET
                currency = COALESCE(EXCLUDED.currency, orders.currency),
                -- the paid total stands; a placed order's total only fills a gap
                total = CASE WHEN orders.paid_at IS NOT NULL THEN orders.total
                             ELSE COALESCE(EXCLUDED.total, orders.total) END,
                paid_at = COALESCE(orders.paid_at, EXCLUDED.paid_at),
                refunded = orders.refunded + EXCLUDED.refunded,
                fully_refunded = orders.fully_refunded OR EXCLUDED.fully_refunded,
                cancelled = orders.cancelled OR EXCLUDED.cancelled""",
        [f.shop_id for f in rows],
        [f.order_id for f in rows],
        [f.customer_id for f in rows],
        [f.currency for f in rows],
        [f.total for f in rows],
        [f.paid_at for f in rows],
        [f.refunded for f in rows],
        [f.fully_refunded for f in rows],
        [f.cancelled for f in rows],
    )


async def save_members(conn: Connection, schema: str, joined: dict[CustomerKey, datetime]) -> None:
    if not joined:
        return
    keys = sorted(joined)
    await conn.execute(
        f"""INSERT INTO {schema}.members (shop_id, customer_id, joined_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
            ON CONFLICT (shop_id, customer_id) DO UPDATE
                SET joined_at = LEAST(members.joined_at, EXCLUDED.joined_at)""",
        [shop for shop, _ in keys],
        [customer for _, customer in keys],
        [joined[k] for k in keys],
    )


async def save_points(
    conn: Connection,
    schema: str,
    rows: Sequence[tuple[str, str, str, str, int, datetime, str | None]],
) -> None:
    """(entry id, holder, customer, kind, delta, time, member shop where it happened or None)
    rows; an entry already stored stays."""
    if not rows:
        return
    await conn.execute(
        f"""INSERT INTO {schema}.points (entry_id, shop_id, customer_id, kind, delta, at, at_shop)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                                 $6::timestamptz[], $7::text[])
            ON CONFLICT DO NOTHING""",
        *_columns(rows, 7),
    )


async def save_tier_changes(
    conn: Connection,
    schema: str,
    rows: Sequence[tuple[str, str, str, str, datetime, str | None]],
) -> None:
    """(event id, holder, customer, tier, effective time, member shop or None) rows."""
    if not rows:
        return
    await conn.execute(
        f"""INSERT INTO {schema}.tier_changes (event_id, shop_id, customer_id, tier,
                                               effective_at, at_shop)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                 $5::timestamptz[], $6::text[])
            ON CONFLICT DO NOTHING""",
        *_columns(rows, 6),
    )


async def save_memberships(
    conn: Connection,
    schema: str,
    rows: Sequence[tuple[str, str, str, str, datetime, datetime]],
) -> None:
    """(event id, shop, customer, tier, starts, ends) rows."""
    if not rows:
        return
    await conn.execute(
        f"""INSERT INTO {schema}.memberships (event_id, shop_id, customer_id, tier, starts_at,
                                              ends_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                 $5::timestamptz[], $6::timestamptz[])
            ON CONFLICT DO NOTHING""",
        *_columns(rows, 6),
    )


async def end_memberships(
    conn: Connection, schema: str, rows: Sequence[tuple[str, str, str, datetime, datetime]]
) -> None:
    """(shop, customer, tier, starts, cancelled) rows: the purchase of that tier starting then
    ends at the cancellation (never before it starts, never later than it would have)."""
    if not rows:
        return
    await conn.execute(
        f"""UPDATE {schema}.memberships m
            SET ends_at = least(m.ends_at, greatest(c.cancelled_at, m.starts_at))
            FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                        $5::timestamptz[])
                 AS c(shop_id, customer_id, tier, starts_at, cancelled_at)
            WHERE m.shop_id = c.shop_id AND m.customer_id = c.customer_id
              AND m.tier = c.tier AND m.starts_at = c.starts_at""",
        *_columns(rows, 5),
    )


async def save_notifications(
    conn: Connection,
    schema: str,
    rows: Sequence[tuple[str, str, str, str, str, str, str, str | None, datetime]],
) -> None:
    """(event id, notification id, shop, customer, trigger, channel, outcome, reason, time)
    rows."""
    if not rows:
        return
    await conn.execute(
        f"""INSERT INTO {schema}.notifications (event_id, notification_id, shop_id,
                                                customer_id, trigger, channel, outcome,
                                                reason, at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::text[], $7::text[], $8::text[], $9::timestamptz[])
            ON CONFLICT DO NOTHING""",
        *_columns(rows, 9),
    )


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    return [[row[i] for row in rows] for i in range(width)]

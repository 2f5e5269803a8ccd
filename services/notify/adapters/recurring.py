"""Date-driven triggers planned by sweeping the projections: birthdays and win-back, each
customer of each shop on their own."""

from __future__ import annotations

from datetime import datetime

from services.notify.adapters.projections import SCHEMA
from services.notify.adapters.schedule import scope_pattern
from shared.db import Connection

_CHANNELS = "CROSS JOIN LATERAL (VALUES ('email'), ('push')) AS ch(channel)"
_HAS_CHANNEL = "(ch.channel = 'email' OR c.push_subscription IS NOT NULL)"


async def plan_birthdays(
    conn: Connection, now: datetime, *, voucher: str, zone: str, scope: str = ""
) -> int:
    """A greeting for every customer whose birthday is today in their own time zone.

    One per customer and year (the key holds the local year); someone born on 29 February is
    greeted on the 28th in other years.
    """
    result = await conn.execute(
        f"""INSERT INTO {SCHEMA}.scheduled (dedup_key, shop_id, customer_id, trigger, template,
                channel, category, due_at, payload, created_at, updated_at)
            SELECT 'birthday:' || c.customer_id || ':' || to_char(l.day, 'YYYY') || ':'
                       || ch.channel,
                   c.shop_id, c.customer_id, 'birthday', 'birthday', ch.channel, 'marketing', $1,
                   jsonb_build_object('voucher', $2::text), $1, $1
            FROM {SCHEMA}.customers c
            CROSS JOIN LATERAL (
                SELECT ($1::timestamptz AT TIME ZONE coalesce(c.time_zone, $3))::date AS day) l
            {_CHANNELS}
            WHERE c.birthday IS NOT NULL AND {_HAS_CHANNEL} AND c.customer_id LIKE $4
              AND (to_char(c.birthday, 'MM-DD') = to_char(l.day, 'MM-DD')
                   OR (to_char(c.birthday, 'MM-DD') = '02-29' AND to_char(l.day, 'MM-DD') = '02-28'
                       AND extract(day FROM make_date(extract(year FROM l.day)::int, 3, 1)
                                   - 1) = 28))
            ON CONFLICT (shop_id, dedup_key) DO NOTHING""",
        now,
        voucher,
        zone,
        scope_pattern(scope),
    )
    return int(result.split()[-1])


async def plan_winbacks(
    conn: Connection,
    now: datetime,
    *,
    days: int,
    coupon: str,
    min_order: str,
    scope: str = "",
) -> int:
    """Customers whose last order is `days` old: one message per lapse.

    A one-time buyer gets a coupon valid above a minimum order value; the others an invitation
    to the best sellers. An order after planning voids the message (checked before sending).
    """
    result = await conn.execute(
        f"""INSERT INTO {SCHEMA}.scheduled (dedup_key, shop_id, customer_id, trigger, template,
                channel, category, due_at, payload, created_at, updated_at)
            SELECT 'winback:' || o.customer_id || ':'
                       || to_char(o.last_order_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') || ':'
                       || ch.channel,
                   o.shop_id, o.customer_id, 'winback', 'winback', ch.channel, 'marketing', $1,
                   jsonb_build_object(
                       'one_time', o.order_count = 1,
                       'coupon', CASE WHEN o.order_count = 1 THEN $3::text END,
                       'min_order', CASE WHEN o.order_count = 1 THEN $4::text END,
                       'days', $2::int,
                       'since', to_jsonb($1::timestamptz)),
                   $1, $1
            FROM {SCHEMA}.customer_orders o
            JOIN {SCHEMA}.customers c USING (shop_id, customer_id)
            {_CHANNELS}
            WHERE o.last_order_at <= $1::timestamptz - make_interval(days => $2::int)
              AND {_HAS_CHANNEL} AND o.customer_id LIKE $5
            ON CONFLICT (shop_id, dedup_key) DO NOTHING""",
        now,
        days,
        coupon,
        min_order,
        scope_pattern(scope),
    )
    return int(result.split()[-1])

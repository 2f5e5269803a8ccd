"""Earn's projection of customers, action awards and their limit counters, in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.earn.adapters.ledger import SCHEMA
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class CustomerSeen:
    """What one shop.customers event says; None leaves a field as it was."""

    customer_id: str
    birthday: date | None
    time_zone: str | None
    next_birthday_at: datetime | None


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral whose two halves (the referrer, the first paid order) are both known."""

    referred_id: str
    referrer_id: str
    referral_event_id: str
    referral_at: datetime
    first_order_id: str
    first_order_event_id: str
    first_paid_at: datetime


@dataclass(frozen=True, slots=True)
class AwardRow:
    award_id: str
    action: str
    customer_id: str
    points: int  # 0 when its limit refused it
    occurred_at: datetime
    source_event_id: str | None


async def record_customers(conn: Connection, seen: Sequence[CustomerSeen]) -> None:
    """Upsert the projection, one row per customer (the caller folds a batch's events)."""
    if not seen:
        return
    rows = sorted(seen, key=lambda s: s.customer_id)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.customers AS c (customer_id, birthday, time_zone,
                                                  next_birthday_at)
            SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::timestamptz[])
            ON CONFLICT (customer_id) DO UPDATE
               SET birthday = coalesce(excluded.birthday, c.birthday),
                   time_zone = coalesce(excluded.time_zone, c.time_zone),
                   next_birthday_at = coalesce(excluded.next_birthday_at, c.next_birthday_at),
                   updated_at = now()""",
        [s.customer_id for s in rows],
        [s.birthday for s in rows],
        [s.time_zone for s in rows],
        [s.next_birthday_at for s in rows],
    )


async def customer_profiles(
    conn: Connection, customer_ids: Sequence[str]
) -> dict[str, tuple[date | None, str | None]]:
    """Birthday and time zone known for each customer."""
    rows = await conn.fetch(
        f"""SELECT customer_id, birthday, time_zone FROM {SCHEMA}.customers
            WHERE customer_id = ANY($1::text[])""",
        list(customer_ids),
    )
    return {r["customer_id"]: (r["birthday"], r["time_zone"]) for r in rows}


_REFERRAL = """customer_id, referrer_id, referral_event_id, referral_at, first_order_id,
               first_order_event_id, first_paid_at, referral_rewarded"""


def _complete(rows: Sequence[Any]) -> list[Referral]:
    return [
        Referral(
            referred_id=r["customer_id"],
            referrer_id=r["referrer_id"],
            referral_event_id=r["referral_event_id"],
            referral_at=r["referral_at"],
            first_order_id=r["first_order_id"],
            first_order_event_id=r["first_order_event_id"],
            first_paid_at=r["first_paid_at"],
        )
        for r in rows
        if r["referrer_id"] is not None
        and r["first_order_id"] is not None
        and not r["referral_rewarded"]
    ]


async def record_referrers(
    conn: Connection, referrals: Sequence[tuple[str, str, str, datetime]]
) -> list[Referral]:
    """Record (referred, referrer, event id, time); the first referrer known wins. Returns the
    referrals this completes: the referred customer has paid an order already.

    Both this and `record_first_orders` write the referred customer's row: the row lock makes
    whichever commits second see the other's half, so a referral is completed exactly once."""
    if not referrals:
        return []
    first: dict[str, tuple[str, str, str, datetime]] = {}
    for referral in referrals:
        first.setdefault(referral[0], referral)
    rows = [first[k] for k in sorted(first)]
    found = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.customers AS c (customer_id, referrer_id, referral_event_id,
                                                  referral_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
            ON CONFLICT (customer_id) DO UPDATE
               SET referrer_id = excluded.referrer_id,
                   referral_event_id = excluded.referral_event_id,
                   referral_at = excluded.referral_at,
                   updated_at = now()
               WHERE c.referrer_id IS NULL
            RETURNING {_REFERRAL}""",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )
    return _complete(found)


# Customers whose first order is known already are left out before the upsert: a first order
# is never unset, and an upsert that finds its row locks it (a write-ahead log record) even
# when its WHERE then changes nothing. They are looked up by the customers' key in its own
# collation: compared in the orders' collation ("C"), the key's index could not serve, and
# PostgreSQL read every customer for each batch.
FIRST_ORDERS = f"""
    INSERT INTO {SCHEMA}.customers AS c (customer_id, first_order_id, first_order_event_id,
                                         first_paid_at)
    SELECT * FROM (
        SELECT DISTINCT ON (o.customer_id)
               o.customer_id, o.order_id, o.paid_event_id, o.paid_at
        FROM {SCHEMA}.orders o
        WHERE o.order_id = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.customers k
                          WHERE k.customer_id = o.customer_id COLLATE "default"
                            AND k.first_order_id IS NOT NULL)
        ORDER BY o.customer_id, o.paid_at, o.order_id) o
    ON CONFLICT (customer_id) DO UPDATE
       SET first_order_id = excluded.first_order_id,
           first_order_event_id = excluded.first_order_event_id,
           first_paid_at = excluded.first_paid_at,
           updated_at = now()
       WHERE c.first_order_id IS NULL
    RETURNING {_REFERRAL}"""


async def record_first_orders(conn: Connection, order_ids: Sequence[str]) -> list[Referral]:
    """Note the first paid order of customers who had none; returns the referrals this
    completes (the referrer was known already)."""
    if not order_ids:
        return []
    return _complete(await conn.fetch(FIRST_ORDERS, list(order_ids)))


async def mark_referrals_rewarded(conn: Connection, referred_ids: Sequence[str]) -> None:
    await conn.execute(
        f"""UPDATE {SCHEMA}.customers SET referral_rewarded = true, updated_at = now()
            WHERE customer_id = ANY($1::text[])""",
        list(referred_ids),
    )


async def decided_awards(conn: Connection, award_ids: Sequence[str]) -> set[str]:
    """The award ids decided already (granted or refused)."""
    rows = await conn.fetch(
        f"SELECT award_id FROM {SCHEMA}.action_awards WHERE award_id = ANY($1::text[])",
        list(award_ids),
    )
    return {r["award_id"] for r in rows}


async def lock_counters(
    conn: Connection, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], int]:
    """Create and lock the limit counters, in key order (no deadlock between batches); what
    each has granted so far."""
    if not keys:
        return {}
    ordered = sorted(set(keys))
    columns = ([k[0] for k in ordered], [k[1] for k in ordered], [k[2] for k in ordered])
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.action_counts (action, customer_id, period, used)
            SELECT a, c, p, 0 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(a, c, p)
            ORDER BY a, c, p
            ON CONFLICT DO NOTHING""",
        *columns,
    )
    rows = await conn.fetch(
        f"""SELECT n.action, n.customer_id, n.period, n.used
            FROM {SCHEMA}.action_counts n
            JOIN unnest($1::text[], $2::text[], $3::text[]) AS u(a, c, p)
              ON (n.action, n.customer_id, n.period) = (u.a, u.c, u.p)
            ORDER BY n.action, n.customer_id, n.period
            FOR UPDATE OF n""",
        *columns,
    )
    return {(r["action"], r["customer_id"], r["period"]): r["used"] for r in rows}


async def save_counters(conn: Connection, used: dict[tuple[str, str, str], int]) -> None:
    if not used:
        return
    keys = sorted(used)
    await conn.execute(
        f"""UPDATE {SCHEMA}.action_counts n SET used = u.used
            FROM unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS u(a, c, p, used)
            WHERE (n.action, n.customer_id, n.period) = (u.a, u.c, u.p)""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [used[k] for k in keys],
    )


async def record_awards(conn: Connection, awards: Sequence[AwardRow]) -> None:
    if not awards:
        return
    await conn.executemany(
        f"""INSERT INTO {SCHEMA}.action_awards (award_id, action, customer_id, points,
                                                occurred_at, source_event_id)
            VALUES ($1, $2, $3, $4, $5, $6)""",
        [
            (a.award_id, a.action, a.customer_id, a.points, a.occurred_at, a.source_event_id)
            for a in awards
        ],
    )


@dataclass(frozen=True, slots=True)
class BirthdayDue:
    customer_id: str
    birthday: date
    time_zone: str
    due_at: datetime


async def take_birthdays(conn: Connection, *, now: datetime, limit: int) -> list[BirthdayDue]:
    """Claim customers whose birthday has begun; replicas skip each other's (SKIP LOCKED)."""
    rows = await conn.fetch(
        f"""SELECT customer_id, birthday, time_zone, next_birthday_at FROM {SCHEMA}.customers
            WHERE next_birthday_at <= $1
            ORDER BY next_birthday_at, customer_id
            LIMIT $2
            FOR UPDATE SKIP LOCKED""",
        now,
        limit,
    )
    return [
        BirthdayDue(r["customer_id"], r["birthday"], r["time_zone"], r["next_birthday_at"])
        for r in rows
    ]


async def set_next_birthdays(conn: Connection, nexts: Sequence[tuple[str, datetime]]) -> None:
    if not nexts:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.customers c SET next_birthday_at = u.at, updated_at = now()
            FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
            WHERE c.customer_id = u.id""",
        [n[0] for n in nexts],
        [n[1] for n in nexts],
    )


async def existing_entries(conn: Connection, entry_ids: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        f"SELECT entry_id FROM {SCHEMA}.ledger WHERE entry_id = ANY($1::text[])",
        list(entry_ids),
    )
    return {r["entry_id"] for r in rows}

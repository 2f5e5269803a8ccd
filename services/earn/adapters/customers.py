"""Earn's projection of customers (birthdays, referrals, first orders) and the action awards
decided, in PostgreSQL, keyed by the holder of the accounts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.earn.adapters.ledger import SCHEMA
from services.earn.domain.actions import AwardRow, Referral
from services.earn.domain.order_batch import FirstOrder
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class CustomerSeen:
    """What one shop.customers event says; None leaves a field as it was."""

    shop_id: str
    customer_id: str
    birthday: date | None
    time_zone: str | None
    next_birthday_at: datetime | None


async def record_customers(conn: Connection, seen: Sequence[CustomerSeen]) -> None:
    """Upsert the projection, one row per customer (the caller folds a batch's events)."""
    if not seen:
        return
    rows = sorted(seen, key=lambda s: (s.shop_id, s.customer_id))
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.customers AS c (shop_id, customer_id, birthday, time_zone,
                                                  next_birthday_at)
            SELECT * FROM unnest($5::text[], $1::text[], $2::date[], $3::text[],
                                 $4::timestamptz[])
            ON CONFLICT (shop_id, customer_id) DO UPDATE
               SET birthday = coalesce(excluded.birthday, c.birthday),
                   time_zone = coalesce(excluded.time_zone, c.time_zone),
                   next_birthday_at = coalesce(excluded.next_birthday_at, c.next_birthday_at),
                   updated_at = now()""",
        [s.customer_id for s in rows],
        [s.birthday for s in rows],
        [s.time_zone for s in rows],
        [s.next_birthday_at for s in rows],
        [s.shop_id for s in rows],
    )


async def customer_profiles(
    conn: Connection, customers: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[date | None, str | None]]:
    """Birthday and time zone known for each (shop, customer)."""
    asked = set(customers)
    rows = await conn.fetch(
        f"""SELECT shop_id, customer_id, birthday, time_zone FROM {SCHEMA}.customers
            WHERE (shop_id, customer_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))""",
        [shop for shop, _ in asked],
        [customer for _, customer in asked],
    )
    return {
        key: (r["birthday"], r["time_zone"])
        for r in rows
        if (key := (r["shop_id"], r["customer_id"])) in asked
    }


_REFERRAL = """shop_id, customer_id, referrer_id, referral_event_id, referral_at, first_order_id,
               first_order_event_id, first_paid_at, referral_rewarded"""


def _complete(rows: Sequence[Any]) -> list[Referral]:
    return [
        Referral(
            shop_id=r["shop_id"],
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
    conn: Connection, referrals: Sequence[tuple[str, str, str, str, datetime]]
) -> list[Referral]:
    """Record (holder, referred, referrer, event id, time); the first referrer known wins.
    Returns the referrals this completes: the referred customer has paid an order already.

    Both this and `record_first_orders` write the referred customer's row: the row lock makes
    whichever commits second see the other's half, so a referral is completed exactly once."""
    if not referrals:
        return []
    first: dict[tuple[str, str], tuple[str, str, str, str, datetime]] = {}
    for referral in referrals:
        first.setdefault((referral[0], referral[1]), referral)
    rows = [first[k] for k in sorted(first)]
    found = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.customers AS c (shop_id, customer_id, referrer_id,
                                                  referral_event_id, referral_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                 $5::timestamptz[])
            ON CONFLICT (shop_id, customer_id) DO UPDATE
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
        [r[4] for r in rows],
    )
    return _complete(found)


# Customers whose first order is known already are left out before the upsert: a first order
# is never unset, and an upsert that finds its row locks it (a write-ahead log record) even
# when its WHERE then changes nothing. They are looked up by the customers' key, whose ids
# compare in the orders' collation ("C", migration 0015): compared in two collations, the key
# could not serve, and PostgreSQL read and sorted every customer for each batch. The orders
# come from the batch in memory, not read back from the orders just copied: that read cost a
# probe of the orders' key per order and a sort, about a third of the statement.
def first_orders(orders: Sequence[FirstOrder]) -> tuple[str, list[Any]]:
    """The statement that records these first orders (one per account, in account order, as
    `order_batch.first_orders` gives them), and its arguments. A batch of one holder sends it
    once, not once per order."""
    holders = {o[0] for o in orders}
    one = holders.pop() if len(holders) == 1 else None
    shop, unnested, named = (
        ("$5::text", "", "") if one is not None else ("u.s", "$5::text[], ", "s, ")
    )
    sql = f"""
    INSERT INTO {SCHEMA}.customers AS c (shop_id, customer_id, first_order_id,
                                         first_order_event_id, first_paid_at)
    SELECT {shop}, u.c, u.o, u.e, u.at
    FROM unnest({unnested}$1::text[], $2::text[], $3::text[], $4::timestamptz[])
         AS u({named}c, o, e, at)
    WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.customers k
                      WHERE k.shop_id = {shop} AND k.customer_id = u.c
                        AND k.first_order_id IS NOT NULL)
    ON CONFLICT (shop_id, customer_id) DO UPDATE
       SET first_order_id = excluded.first_order_id,
           first_order_event_id = excluded.first_order_event_id,
           first_paid_at = excluded.first_paid_at,
           updated_at = now()
       WHERE c.first_order_id IS NULL
    RETURNING {_REFERRAL}"""
    args: list[Any] = [
        [o[1] for o in orders],
        [o[2] for o in orders],
        [o[3] for o in orders],
        [o[4] for o in orders],
        one if one is not None else [o[0] for o in orders],
    ]
    return sql, args


async def record_first_orders(conn: Connection, orders: Sequence[FirstOrder]) -> list[Referral]:
    """Note the first paid order of customers who had none on the account the order earned
    into (its shop's, or its coalition's), from these orders just recorded; returns the
    referrals this completes (the referrer was known already)."""
    if not orders:
        return []
    sql, args = first_orders(orders)
    return _complete(await conn.fetch(sql, *args))


async def mark_referrals_rewarded(conn: Connection, referred: Sequence[tuple[str, str]]) -> None:
    """Mark the referrals of these (shop, referred customer) rewarded."""
    await conn.execute(
        f"""UPDATE {SCHEMA}.customers c SET referral_rewarded = true, updated_at = now()
            FROM unnest($1::text[], $2::text[]) AS u(s, id)
            WHERE c.shop_id = u.s AND c.customer_id = u.id""",
        [shop for shop, _ in referred],
        [customer for _, customer in referred],
    )


async def decided_awards(
    conn: Connection, awards: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The (shop, award id) decided already (granted or refused)."""
    asked = set(awards)
    rows = await conn.fetch(
        f"""SELECT shop_id, award_id FROM {SCHEMA}.action_awards
            WHERE (shop_id, award_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))""",
        [shop for shop, _ in asked],
        [award for _, award in asked],
    )
    return {key for r in rows if (key := (r["shop_id"], r["award_id"])) in asked}


async def record_awards(conn: Connection, awards: Sequence[AwardRow]) -> None:
    if not awards:
        return
    await conn.executemany(
        f"""INSERT INTO {SCHEMA}.action_awards (shop_id, award_id, action, customer_id, points,
                                                occurred_at, source_event_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        [
            (
                a.shop_id,
                a.award_id,
                a.action,
                a.customer_id,
                a.points,
                a.occurred_at,
                a.source_event_id,
            )
            for a in awards
        ],
    )


@dataclass(frozen=True, slots=True)
class BirthdayDue:
    shop_id: str
    customer_id: str
    birthday: date
    time_zone: str
    due_at: datetime


async def take_birthdays(
    conn: Connection, *, now: datetime, limit: int, shops: Sequence[str]
) -> list[BirthdayDue]:
    """Claim customers of `shops` whose birthday has begun; replicas skip each other's (SKIP
    LOCKED)."""
    rows = await conn.fetch(
        f"""SELECT shop_id, customer_id, birthday, time_zone, next_birthday_at
            FROM {SCHEMA}.customers
            WHERE next_birthday_at <= $1 AND shop_id = ANY($3::text[])
            ORDER BY next_birthday_at, shop_id, customer_id
            LIMIT $2
            FOR UPDATE SKIP LOCKED""",
        now,
        limit,
        list(shops),
    )
    return [
        BirthdayDue(
            r["shop_id"], r["customer_id"], r["birthday"], r["time_zone"], r["next_birthday_at"]
        )
        for r in rows
    ]


async def set_next_birthdays(conn: Connection, nexts: Sequence[tuple[str, str, datetime]]) -> None:
    """The next birthday of each (shop, customer, at)."""
    if not nexts:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.customers c SET next_birthday_at = u.at, updated_at = now()
            FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(s, id, at)
            WHERE c.shop_id = u.s AND c.customer_id = u.id""",
        [n[0] for n in nexts],
        [n[1] for n in nexts],
        [n[2] for n in nexts],
    )

"""Earn's balances in PostgreSQL: points per (shop, customer), store credit per currency too.

The one place an account's key is built: every read and lock of a balance goes through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.earn.adapters.ledger import SCHEMA
from services.earn.adapters.pairs import pair_in
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class Account:
    customer_id: str
    points_balance: int
    points_pending: int
    lifetime_earned: int


@dataclass(frozen=True, slots=True)
class CreditAccount:
    """A customer's store credit in one currency, in minor units."""

    customer_id: str
    currency: str
    balance_minor: int
    pending_minor: int


_ACCOUNT = "customer_id, points_balance, points_pending, lifetime_earned"
_CREDIT_ACCOUNT = "customer_id, currency, balance_minor, pending_minor"


async def lock_account(conn: Connection, shop_id: str, customer_id: str) -> Account | None:
    """The customer's points account at the shop, locked until the transaction ends: every
    spending of one customer's points waits for the one before, so none sees a balance
    already spent."""
    row = await conn.fetchrow(
        f"""SELECT {_ACCOUNT} FROM {SCHEMA}.accounts
            WHERE shop_id = $1 AND customer_id = $2 FOR UPDATE""",
        shop_id,
        customer_id,
    )
    return None if row is None else Account(**dict(row))


async def read_account(conn: Connection, shop_id: str, customer_id: str) -> Account | None:
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT} FROM {SCHEMA}.accounts WHERE shop_id = $1 AND customer_id = $2",
        shop_id,
        customer_id,
    )
    return None if row is None else Account(**dict(row))


async def known_customer(conn: Connection, shop_id: str, customer_id: str) -> bool:
    """Whether any event of the shop told earn of the customer: an account, store credit, a
    sign-up or order (the customers projection), an order, or a tier."""
    found = await conn.fetchval(
        f"""SELECT EXISTS (SELECT FROM {SCHEMA}.accounts
                           WHERE shop_id = $1 AND customer_id = $2)
                OR EXISTS (SELECT FROM {SCHEMA}.credit_accounts
                           WHERE shop_id = $1 AND customer_id = $2)
                OR EXISTS (SELECT FROM {SCHEMA}.customers
                           WHERE shop_id = $1 AND customer_id = $2)
                OR EXISTS (SELECT FROM {SCHEMA}.orders
                           WHERE shop_id = $1 AND customer_id = $2)
                OR EXISTS (SELECT FROM {SCHEMA}.customer_tiers
                           WHERE shop_id = $1 AND customer_id = $2)""",
        shop_id,
        customer_id,
    )
    return bool(found)


async def read_credit(
    conn: Connection, shop_id: str, customer_id: str
) -> list[tuple[str, int, int]]:
    """Store credit at the shop per currency: (currency, balance, pending), in minor units."""
    rows = await conn.fetch(
        f"""SELECT currency, balance_minor, pending_minor FROM {SCHEMA}.credit_accounts
            WHERE shop_id = $1 AND customer_id = $2 ORDER BY currency""",
        shop_id,
        customer_id,
    )
    return [(r["currency"], r["balance_minor"], r["pending_minor"]) for r in rows]


async def lock_credit(
    conn: Connection, shop_id: str, customer_id: str, currency: str
) -> CreditAccount | None:
    """The customer's store credit at the shop in `currency`, locked until the transaction
    ends: every spend of that credit waits for the one before, so none sees credit already
    spent."""
    row = await conn.fetchrow(
        f"""SELECT {_CREDIT_ACCOUNT} FROM {SCHEMA}.credit_accounts
            WHERE shop_id = $3 AND customer_id = $1 AND currency = $2 FOR UPDATE""",
        customer_id,
        currency,
        shop_id,
    )
    return None if row is None else CreditAccount(**dict(row))


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


async def take_points_to_carry(
    conn: Connection, shops: Sequence[str], *, limit: int
) -> list[tuple[str, str, int, int]]:
    """Claim points accounts of `shops` with a balance other than zero, in account order (the
    order every balance write locks accounts in); replicas skip each other's (SKIP LOCKED).
    Each as (shop, customer, balance, seq of its last points entry)."""
    rows = await conn.fetch(
        f"""SELECT a.shop_id, a.customer_id, a.points_balance,
                   (SELECT max(l.seq) FROM {SCHEMA}.ledger l
                    WHERE l.shop_id = a.shop_id AND l.customer_id = a.customer_id
                      AND l.balance_kind = 'points') AS last_seq
            FROM {SCHEMA}.accounts a
            WHERE a.shop_id = ANY($1::text[]) AND a.points_balance <> 0
            ORDER BY a.shop_id, a.customer_id
            LIMIT $2
            FOR UPDATE OF a SKIP LOCKED""",
        list(shops),
        limit,
    )
    return [(r["shop_id"], r["customer_id"], r["points_balance"], r["last_seq"] or 0) for r in rows]


async def take_credit_to_carry(
    conn: Connection, shops: Sequence[str], currencies: Sequence[str], *, limit: int
) -> list[tuple[str, str, str, int, int]]:
    """Claim store credit of `shops` in `currencies` other than zero, as
    `take_points_to_carry` does: (shop, customer, currency, balance, seq of its last entry)."""
    rows = await conn.fetch(
        f"""SELECT a.shop_id, a.customer_id, a.currency, a.balance_minor,
                   (SELECT max(l.seq) FROM {SCHEMA}.ledger l
                    WHERE l.shop_id = a.shop_id AND l.customer_id = a.customer_id
                      AND l.balance_kind = 'store_credit' AND l.currency = a.currency)
                       AS last_seq
            FROM {SCHEMA}.credit_accounts a
            WHERE a.shop_id = ANY($1::text[]) AND a.currency = ANY($2::text[])
              AND a.balance_minor <> 0
            ORDER BY a.shop_id, a.customer_id, a.currency
            LIMIT $3
            FOR UPDATE OF a SKIP LOCKED""",
        list(shops),
        list(currencies),
        limit,
    )
    return [
        (r["shop_id"], r["customer_id"], r["currency"], r["balance_minor"], r["last_seq"] or 0)
        for r in rows
    ]

"""Earn's balances in PostgreSQL: points per (shop, customer), store credit per currency too.

The one place an account's key is built: every read and lock of a balance goes through here.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.earn.adapters.ledger import SCHEMA
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

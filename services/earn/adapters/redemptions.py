"""Redemptions, locked balances and ledger pages in PostgreSQL (earn schema)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from services.earn.adapters.ledger import SCHEMA
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class Account:
    customer_id: str
    points_balance: int
    points_pending: int
    lifetime_earned: int


@dataclass(frozen=True, slots=True)
class Redemption:
    shop_id: str
    redemption_id: str
    customer_id: str
    reward_code: str
    reward_name: str
    reward_kind: str
    points: int
    value: Decimal | None
    currency: str | None
    sku: str | None
    voucher_code: str
    status: str
    redeemed_entry_id: str
    restored_entry_id: str | None
    created_at: datetime
    expires_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


_ACCOUNT = "customer_id, points_balance, points_pending, lifetime_earned"
_REDEMPTION = ", ".join(Redemption.__dataclass_fields__)


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


async def insert_redemption(conn: Connection, r: Redemption) -> None:
    fields = list(Redemption.__dataclass_fields__)
    placeholders = ", ".join(f"${i}" for i in range(1, len(fields) + 1))
    await conn.execute(
        f"INSERT INTO {SCHEMA}.redemptions ({_REDEMPTION}) VALUES ({placeholders})",
        *(getattr(r, f) for f in fields),
    )


async def read_redemption(
    conn: Connection, shop_id: str, redemption_id: str, *, lock: bool = False
) -> Redemption | None:
    row = await conn.fetchrow(
        f"""SELECT {_REDEMPTION} FROM {SCHEMA}.redemptions
            WHERE shop_id = $1 AND redemption_id = $2"""
        + (" FOR UPDATE" if lock else ""),
        shop_id,
        redemption_id,
    )
    return None if row is None else Redemption(**dict(row))


async def mark_cancelled(
    conn: Connection,
    shop_id: str,
    redemption_id: str,
    *,
    restored_entry_id: str,
    at: datetime,
    reason: str,
) -> None:
    await conn.execute(
        f"""UPDATE {SCHEMA}.redemptions
            SET status = 'cancelled', restored_entry_id = $2, cancelled_at = $3,
                cancel_reason = $4
            WHERE shop_id = $5 AND redemption_id = $1""",
        redemption_id,
        restored_entry_id,
        at,
        reason,
        shop_id,
    )


async def read_entries(
    conn: Connection, shop_id: str, customer_id: str, *, before_seq: int | None, limit: int
) -> list[asyncpg.Record]:
    """A page of the customer's ledger at the shop, newest first: entries with seq below
    `before_seq`."""
    return await conn.fetch(
        f"""SELECT seq, entry_id, kind, delta, balance_after, reason, order_id, balance_kind,
                   currency, occurred_at, expires_at
            FROM {SCHEMA}.ledger
            WHERE shop_id = $4 AND customer_id = $1 AND ($2::bigint IS NULL OR seq < $2)
            ORDER BY seq DESC LIMIT $3""",
        customer_id,
        before_seq,
        limit,
        shop_id,
    )

"""Store credit spends and locked credit balances in PostgreSQL (earn schema)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.earn.adapters.ledger import SCHEMA
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class CreditAccount:
    """A customer's store credit in one currency, in minor units."""

    customer_id: str
    currency: str
    balance_minor: int
    pending_minor: int


@dataclass(frozen=True, slots=True)
class CreditSpend:
    shop_id: str
    spend_id: str
    customer_id: str
    currency: str
    amount_minor: int
    order_id: str | None
    balance_after_minor: int
    status: str
    spent_entry_id: str
    restored_entry_id: str | None
    created_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None


_ACCOUNT = "customer_id, currency, balance_minor, pending_minor"
_SPEND = ", ".join(CreditSpend.__dataclass_fields__)


async def lock_credit(
    conn: Connection, shop_id: str, customer_id: str, currency: str
) -> CreditAccount | None:
    """The customer's store credit at the shop in `currency`, locked until the transaction
    ends: every spend of that credit waits for the one before, so none sees credit already
    spent."""
    row = await conn.fetchrow(
        f"""SELECT {_ACCOUNT} FROM {SCHEMA}.credit_accounts
            WHERE shop_id = $3 AND customer_id = $1 AND currency = $2 FOR UPDATE""",
        customer_id,
        currency,
        shop_id,
    )
    return None if row is None else CreditAccount(**dict(row))


async def insert_spend(conn: Connection, s: CreditSpend) -> None:
    fields = list(CreditSpend.__dataclass_fields__)
    placeholders = ", ".join(f"${i}" for i in range(1, len(fields) + 1))
    await conn.execute(
        f"INSERT INTO {SCHEMA}.credit_spends ({_SPEND}) VALUES ({placeholders})",
        *(getattr(s, f) for f in fields),
    )


async def read_spend(
    conn: Connection, shop_id: str, spend_id: str, *, lock: bool = False
) -> CreditSpend | None:
    row = await conn.fetchrow(
        f"SELECT {_SPEND} FROM {SCHEMA}.credit_spends WHERE shop_id = $1 AND spend_id = $2"
        + (" FOR UPDATE" if lock else ""),
        shop_id,
        spend_id,
    )
    return None if row is None else CreditSpend(**dict(row))


async def mark_spend_cancelled(
    conn: Connection,
    shop_id: str,
    spend_id: str,
    *,
    restored_entry_id: str,
    at: datetime,
    reason: str,
) -> None:
    await conn.execute(
        f"""UPDATE {SCHEMA}.credit_spends
            SET status = 'cancelled', restored_entry_id = $2, cancelled_at = $3,
                cancel_reason = $4
            WHERE shop_id = $5 AND spend_id = $1""",
        spend_id,
        restored_entry_id,
        at,
        reason,
        shop_id,
    )

"""Records of balance spent in PostgreSQL: redemptions of points and store credit spends, one
repository for both (their tables differ only in the id column and the kind's own fields)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

from services.earn.adapters.ledger import SCHEMA
from shared.db import Connection


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
    holder_id: str | None = None  # the account it debited, when not the shop's own

    @property
    def holder(self) -> str:
        return self.holder_id or self.shop_id


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
    holder_id: str | None = None  # the account it debited, when not the shop's own

    @property
    def holder(self) -> str:
        return self.holder_id or self.shop_id


T = TypeVar("T", Redemption, CreditSpend)


class SpendTable(Generic[T]):
    """The spends of one kind: `table` keyed by (shop_id, `id_column`), rows as `record`."""

    def __init__(self, conn: Connection, table: str, id_column: str, record: type[T]) -> None:
        self._conn = conn
        self._table = f"{SCHEMA}.{table}"
        self._id = id_column
        self._record: type[T] = record
        self._fields = list(record.__dataclass_fields__)

    async def add(self, record: T) -> None:
        placeholders = ", ".join(f"${i}" for i in range(1, len(self._fields) + 1))
        await self._conn.execute(
            f"INSERT INTO {self._table} ({', '.join(self._fields)}) VALUES ({placeholders})",
            *(getattr(record, f) for f in self._fields),
        )

    async def get(self, shop_id: str, spend_id: str, *, lock: bool = False) -> T | None:
        row = await self._conn.fetchrow(
            f"""SELECT {", ".join(self._fields)} FROM {self._table}
                WHERE shop_id = $1 AND {self._id} = $2"""
            + (" FOR UPDATE" if lock else ""),
            shop_id,
            spend_id,
        )
        return None if row is None else self._record(**dict(row))

    async def mark_cancelled(
        self, shop_id: str, spend_id: str, *, restored_entry_id: str, at: datetime, reason: str
    ) -> None:
        await self._conn.execute(
            f"""UPDATE {self._table}
                SET status = 'cancelled', restored_entry_id = $2, cancelled_at = $3,
                    cancel_reason = $4
                WHERE shop_id = $5 AND {self._id} = $1""",
            spend_id,
            restored_entry_id,
            at,
            reason,
            shop_id,
        )


def redemptions(conn: Connection) -> SpendTable[Redemption]:
    return SpendTable(conn, "redemptions", "redemption_id", Redemption)


def credit_spends(conn: Connection) -> SpendTable[CreditSpend]:
    return SpendTable(conn, "credit_spends", "spend_id", CreditSpend)

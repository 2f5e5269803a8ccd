"""What earn's use cases read and write, as one transaction's repositories.

A unit of work is the view of a transaction that is already open: the batch consumer's for
messages, the idempotent request's for the API, a scheduled pass's own. It never commits;
whoever opened the transaction does. `PostgresUnitOfWork` is the real one, over one connection;
tests/earn_fakes.py holds one in memory, so the rules run against it in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from services.earn.adapters import accounts, spends
from services.earn.adapters.accounts import Account, CreditAccount
from services.earn.adapters.spends import CreditSpend, Redemption
from services.earn.adapters.tiers import TierSeen, record_tiers
from services.earn.domain.ledger import NewEntry, WrittenEntry
from services.earn.entries import write_entries
from shared.db import Connection

T = TypeVar("T")


class Accounts(Protocol):
    """The balances: points per (shop, customer), store credit per currency as well."""

    async def lock_points(self, shop_id: str, customer_id: str) -> Account | None:
        """The points account, locked until the transaction ends."""

    async def lock_credit(
        self, shop_id: str, customer_id: str, currency: str
    ) -> CreditAccount | None:
        """The store credit in one currency, locked until the transaction ends."""

    async def read_points(self, shop_id: str, customer_id: str) -> Account | None: ...

    async def read_credit(self, shop_id: str, customer_id: str) -> list[tuple[str, int, int]]:
        """(currency, balance, pending) per currency held, in currency order."""


class Ledger(Protocol):
    async def write(self, entries: Sequence[NewEntry]) -> list[WrittenEntry]:
        """Append the entries, move their balances, and send one loyalty.points event each."""


class Spends(Protocol[T]):
    """Records of balance spent (redemptions, store credit spends), by shop and id."""

    async def add(self, record: T) -> None: ...

    async def get(self, shop_id: str, spend_id: str, *, lock: bool = False) -> T | None: ...

    async def mark_cancelled(
        self, shop_id: str, spend_id: str, *, restored_entry_id: str, at: datetime, reason: str
    ) -> None: ...


class Tiers(Protocol):
    async def record(self, seen: Sequence[TierSeen]) -> None:
        """The customers' tiers and multipliers from their effective times on."""


class UnitOfWork(Protocol):
    # Read-only members: an implementation may hold more precise repositories (the fake's).
    @property
    def accounts(self) -> Accounts: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def tiers(self) -> Tiers: ...
    @property
    def redemptions(self) -> Spends[Redemption]: ...
    @property
    def credit_spends(self) -> Spends[CreditSpend]: ...


class PostgresUnitOfWork:
    """The repositories over one connection, inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.accounts: Accounts = _Accounts(conn)
        self.ledger: Ledger = _Ledger(conn)
        self.tiers: Tiers = _Tiers(conn)
        self.redemptions: Spends[Redemption] = spends.redemptions(conn)
        self.credit_spends: Spends[CreditSpend] = spends.credit_spends(conn)


class _Accounts:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def lock_points(self, shop_id: str, customer_id: str) -> Account | None:
        return await accounts.lock_account(self._conn, shop_id, customer_id)

    async def lock_credit(
        self, shop_id: str, customer_id: str, currency: str
    ) -> CreditAccount | None:
        return await accounts.lock_credit(self._conn, shop_id, customer_id, currency)

    async def read_points(self, shop_id: str, customer_id: str) -> Account | None:
        return await accounts.read_account(self._conn, shop_id, customer_id)

    async def read_credit(self, shop_id: str, customer_id: str) -> list[tuple[str, int, int]]:
        return await accounts.read_credit(self._conn, shop_id, customer_id)


class _Ledger:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def write(self, entries: Sequence[NewEntry]) -> list[WrittenEntry]:
        return await write_entries(self._conn, entries)


class _Tiers:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def record(self, seen: Sequence[TierSeen]) -> None:
        await record_tiers(self._conn, seen)

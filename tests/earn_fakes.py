"""Earn's unit of work in memory: the same repositories as services/earn/unit_of_work.py, over
dicts, so that the use cases run in unit tests. Balances move as the ledger's SQL moves them
(running balance_after per account, in the order the entries are given); an insert of a key
already held fails as the primary key would."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, TypeVar

from services.earn.adapters.accounts import Account, CreditAccount
from services.earn.adapters.spends import CreditSpend, Redemption
from services.earn.adapters.tiers import TierSeen
from services.earn.domain.ledger import NewEntry, WrittenEntry

T = TypeVar("T", Redemption, CreditSpend)


class DuplicateKey(Exception):
    """What PostgreSQL answers an insert of a primary key already held."""


@dataclass
class FakeAccounts:
    # (shop, customer) -> [balance, pending, lifetime earned]
    points: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    # (shop, customer, currency) -> [balance, pending]
    credit: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    locked: list[tuple[str, ...]] = field(default_factory=list)

    async def lock_points(self, shop_id: str, customer_id: str) -> Account | None:
        self.locked.append((shop_id, customer_id))
        return await self.read_points(shop_id, customer_id)

    async def lock_credit(
        self, shop_id: str, customer_id: str, currency: str
    ) -> CreditAccount | None:
        self.locked.append((shop_id, customer_id, currency))
        held = self.credit.get((shop_id, customer_id, currency))
        return None if held is None else CreditAccount(customer_id, currency, held[0], held[1])

    async def read_points(self, shop_id: str, customer_id: str) -> Account | None:
        held = self.points.get((shop_id, customer_id))
        return None if held is None else Account(customer_id, held[0], held[1], held[2])

    async def read_credit(self, shop_id: str, customer_id: str) -> list[tuple[str, int, int]]:
        return sorted(
            (currency, held[0], held[1])
            for (s, c, currency), held in self.credit.items()
            if (s, c) == (shop_id, customer_id)
        )


@dataclass
class FakeLedger:
    accounts: FakeAccounts
    entries: list[WrittenEntry] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)  # loyalty.points events by entry id

    async def write(self, entries: Sequence[NewEntry]) -> list[WrittenEntry]:
        ids = {w.entry.entry_id for w in self.entries}
        if any(e.entry_id in ids for e in entries) or len({e.entry_id for e in entries}) < len(
            entries
        ):
            raise DuplicateKey("ledger entry_id")
        written = []
        for e in entries:
            if e.currency is None:
                held = self.accounts.points.setdefault((e.shop_id, e.customer_id), [0, 0, 0])
                held[2] += e.delta if e.kind == "earned" else 0
            else:
                held = self.accounts.credit.setdefault(
                    (e.shop_id, e.customer_id, e.currency), [0, 0]
                )
            held[0] += e.delta
            written.append(WrittenEntry(e, held[0]))
            self.events[e.entry_id] += 1
        self.entries += written
        return written


@dataclass
class FakeSpends(Generic[T]):
    id_field: str
    rows: dict[tuple[str, str], T] = field(default_factory=dict)

    async def add(self, record: T) -> None:
        key = (record.shop_id, getattr(record, self.id_field))
        if key in self.rows:
            raise DuplicateKey(self.id_field)
        self.rows[key] = record

    async def get(self, shop_id: str, spend_id: str, *, lock: bool = False) -> T | None:
        return self.rows.get((shop_id, spend_id))

    async def mark_cancelled(
        self, shop_id: str, spend_id: str, *, restored_entry_id: str, at: datetime, reason: str
    ) -> None:
        key = (shop_id, spend_id)
        if key in self.rows:
            self.rows[key] = replace(
                self.rows[key],
                status="cancelled",
                restored_entry_id=restored_entry_id,
                cancelled_at=at,
                cancel_reason=reason,
            )


@dataclass
class FakeTiers:
    seen: dict[str, TierSeen] = field(default_factory=dict)  # by event id: recorded once

    async def record(self, seen: Sequence[TierSeen]) -> None:
        for s in seen:
            self.seen.setdefault(s.event_id, s)


class FakeUnitOfWork:
    """Every repository in memory; `credit` and `give` set balances up for a test."""

    def __init__(self) -> None:
        self.accounts = FakeAccounts()
        self.ledger = FakeLedger(self.accounts)
        self.tiers = FakeTiers()
        self.redemptions: FakeSpends[Redemption] = FakeSpends("redemption_id")
        self.credit_spends: FakeSpends[CreditSpend] = FakeSpends("spend_id")

    def give(self, shop_id: str, customer_id: str, points: int, *, pending: int = 0) -> None:
        self.accounts.points[(shop_id, customer_id)] = [points, pending, max(points, 0)]

    def credit(
        self, shop_id: str, customer_id: str, currency: str, minor: int, *, pending: int = 0
    ) -> None:
        self.accounts.credit[(shop_id, customer_id, currency)] = [minor, pending]

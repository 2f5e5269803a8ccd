"""Earn's unit of work in PostgreSQL: the repositories of services/earn/unit_of_work.py over
one connection, each delegating to the SQL of its adapter module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from services.earn.adapters import (
    accounts,
    counters,
    customers,
    expiry,
    memberships,
    orders,
    spends,
)
from services.earn.adapters.accounts import Account, CreditAccount
from services.earn.adapters.customers import BirthdayDue, CustomerSeen
from services.earn.adapters.expiry import DueAccount
from services.earn.adapters.ledger import SCHEMA, write_entries
from services.earn.adapters.orders import take_for_release
from services.earn.adapters.spends import CreditSpend, Redemption
from services.earn.adapters.tiers import TierSeen, multipliers_at, record_tiers
from services.earn.domain.actions import AwardRow, CounterKey, Referral
from services.earn.domain.expiry import LedgerLine
from services.earn.domain.ledger import NewEntry, WrittenEntry
from services.earn.domain.memberships import MembershipRecord, MembershipRefund, MembershipRow
from services.earn.domain.order_batch import (
    CampaignKey,
    CardKey,
    CustomerKey,
    FirstOrder,
    NewOrder,
    OrderKey,
    OrderRow,
    UsageKey,
    Waiting,
)
from services.earn.unit_of_work import (
    Accounts,
    Awards,
    Counters,
    Customers,
    Expiry,
    Inbox,
    Ledger,
    Memberships,
    Orders,
    Outbox,
    Spends,
    Tiers,
    Transactions,
    UnitOfWork,
)
from shared.db import ACQUIRE_TIMEOUT_S, Connection
from shared.outbox import OutboxMessage, enqueue


class PostgresUnitOfWork:
    """The repositories over one connection, inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.accounts: Accounts = _Accounts(conn)
        self.ledger: Ledger = _Ledger(conn)
        self.tiers: Tiers = _Tiers(conn)
        self.orders: Orders = _Orders(conn)
        self.counters: Counters = _Counters(conn)
        self.memberships: Memberships = _Memberships(conn)
        self.outbox: Outbox = _Outbox(conn)
        self.inbox: Inbox = _Inbox(conn)
        self.expiry: Expiry = _Expiry(conn)
        self.customers: Customers = _Customers(conn)
        self.awards: Awards = _Awards(conn)
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

    async def held(self, customers: Sequence[CustomerKey]) -> dict[CustomerKey, int]:
        return await accounts.points_held(self._conn, customers)

    async def move_pending(
        self, points: Sequence[tuple[str, str, int]], credit: Sequence[tuple[str, str, str, int]]
    ) -> None:
        await accounts.move_pending_points(self._conn, points)
        await accounts.move_pending_credit(self._conn, credit)

    async def take_points_to_carry(
        self, shops: Sequence[str], *, limit: int
    ) -> list[tuple[str, str, int, int]]:
        return await accounts.take_points_to_carry(self._conn, shops, limit=limit)

    async def take_credit_to_carry(
        self, shops: Sequence[str], currencies: Sequence[str], *, limit: int
    ) -> list[tuple[str, str, str, int, int]]:
        return await accounts.take_credit_to_carry(self._conn, shops, currencies, limit=limit)


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

    async def multipliers_at(self, paid: Sequence[tuple[str, str, datetime]]) -> list[Decimal]:
        return await multipliers_at(self._conn, paid)


class _Orders:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def known(self, keys: Sequence[OrderKey]) -> set[OrderKey]:
        return await orders.known_orders(self._conn, keys)

    async def add(self, new: Sequence[NewOrder], *, available: set[OrderKey]) -> None:
        await orders.insert_orders(self._conn, new, available=available)

    async def lock_many(self, keys: Sequence[OrderKey]) -> dict[OrderKey, OrderRow]:
        return await orders.lock_many(self._conn, keys)

    async def save_many(
        self, rows: Sequence[OrderRow], completed_at: dict[OrderKey, datetime]
    ) -> None:
        await orders.save_many(self._conn, rows, completed_at)

    async def park_many(self, waiting: Sequence[Waiting]) -> None:
        await orders.park_many(self._conn, waiting)

    async def unpark(self, keys: Sequence[OrderKey]) -> list[str]:
        return await orders.unpark(self._conn, keys)

    async def take_for_release(
        self,
        *,
        orders: Sequence[OrderKey] | None,
        shops: Sequence[str] | None,
        due_by: datetime,
        limit: int,
    ) -> list[OrderRow]:
        return await take_for_release(
            self._conn, orders=orders, shops=shops, due_by=due_by, limit=limit
        )


class _Counters:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def lock_campaigns(
        self, totals: set[CampaignKey], usage: set[UsageKey]
    ) -> tuple[dict[CampaignKey, int], dict[UsageKey, int]]:
        return await counters.lock_campaigns(self._conn, totals, usage)

    async def record_campaigns(self, granted: dict[UsageKey, int]) -> None:
        await counters.record_campaigns(self._conn, granted)

    async def punch(self, adds: dict[CardKey, int]) -> dict[CardKey, int]:
        return await counters.punch_many(self._conn, adds)

    async def unpunch(self, takes: dict[CardKey, int]) -> None:
        await counters.unpunch_many(self._conn, takes)


class _Memberships:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, bought: Sequence[MembershipRecord]) -> set[tuple[str, str, str]]:
        return await memberships.record_memberships(self._conn, bought)

    async def of_orders(self, keys: Sequence[OrderKey]) -> dict[OrderKey, list[MembershipRow]]:
        return await memberships.memberships_of(self._conn, keys)

    async def refund(self, refunds: Sequence[MembershipRefund]) -> None:
        await memberships.refund_memberships(self._conn, refunds)


class _Outbox:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, messages: Sequence[OutboxMessage]) -> None:
        await enqueue(self._conn, SCHEMA, messages)


def transactions(pool: asyncpg.Pool) -> Transactions:
    """Units of work each in a transaction of its own on a connection of the pool, committed
    when the block ends without an error."""

    @asynccontextmanager
    async def begin() -> AsyncIterator[UnitOfWork]:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            yield PostgresUnitOfWork(conn)

    return begin


class _Expiry:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def take_due(
        self, *, now: datetime, limit: int, shops: Sequence[str]
    ) -> list[DueAccount]:
        return await expiry.take_due_accounts(self._conn, now=now, limit=limit, shops=shops)

    async def lines(self, keys: Sequence[CustomerKey]) -> dict[CustomerKey, list[LedgerLine]]:
        return await expiry.points_lines(self._conn, keys)

    async def warnings_sent(self, keys: Sequence[CustomerKey]) -> dict[CustomerKey, set[str]]:
        return await expiry.warnings_sent(self._conn, keys)

    async def record_warnings(
        self, warnings: Sequence[tuple[str, str, str, int, datetime]], *, sent_at: datetime
    ) -> set[tuple[str, str]]:
        return await expiry.record_warnings(self._conn, warnings, sent_at=sent_at)

    async def schedule_checks(self, checks: Sequence[tuple[str, str, datetime]]) -> None:
        await expiry.schedule_checks(self._conn, checks)


class _Inbox:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def forget(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            await self._conn.execute(
                f"DELETE FROM {SCHEMA}.inbox WHERE event_id = ANY($1::text[])", list(event_ids)
            )


class _Customers:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def profiles(
        self, keys: Sequence[CustomerKey]
    ) -> dict[CustomerKey, tuple[date | None, str | None]]:
        return await customers.customer_profiles(self._conn, keys)

    async def record(self, seen: Sequence[CustomerSeen]) -> None:
        await customers.record_customers(self._conn, seen)

    async def record_referrers(
        self, referrals: Sequence[tuple[str, str, str, str, datetime]]
    ) -> list[Referral]:
        return await customers.record_referrers(self._conn, referrals)

    async def record_first_orders(self, orders: Sequence[FirstOrder]) -> list[Referral]:
        return await customers.record_first_orders(self._conn, orders)

    async def mark_rewarded(self, referred: Sequence[CustomerKey]) -> None:
        await customers.mark_referrals_rewarded(self._conn, referred)

    async def take_birthdays(
        self, *, now: datetime, limit: int, shops: Sequence[str]
    ) -> list[BirthdayDue]:
        return await customers.take_birthdays(self._conn, now=now, limit=limit, shops=shops)

    async def set_next_birthdays(self, nexts: Sequence[tuple[str, str, datetime]]) -> None:
        await customers.set_next_birthdays(self._conn, nexts)


class _Awards:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def decided(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return await customers.decided_awards(self._conn, keys)

    async def lock_counters(self, keys: Sequence[CounterKey]) -> dict[CounterKey, int]:
        return await counters.lock_counters(self._conn, keys)

    async def save_counters(self, used: dict[CounterKey, int]) -> None:
        await counters.save_counters(self._conn, used)

    async def record(self, rows: Sequence[AwardRow]) -> None:
        await customers.record_awards(self._conn, rows)

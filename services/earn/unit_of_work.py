"""What earn's use cases read and write, as one transaction's repositories.

A unit of work is the view of a transaction that is already open: the batch consumer's for
messages, the idempotent request's for the API, a scheduled pass's own. It never commits;
whoever opened the transaction does. `PostgresUnitOfWork` (adapters/unit_of_work.py) is the
real one, over one connection; tests/earn_fakes.py holds one in memory, so the rules run
against it in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from services.earn.adapters.accounts import Account, CreditAccount
from services.earn.adapters.customers import BirthdayDue, CustomerSeen
from services.earn.adapters.expiry import DueAccount
from services.earn.adapters.spends import CreditSpend, Redemption
from services.earn.adapters.tiers import TierSeen
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
from shared.outbox import OutboxMessage

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

    async def held(self, customers: Sequence[CustomerKey]) -> dict[CustomerKey, int]:
        """Per (shop, customer), the most their balance, lifetime total or pending points can
        reach from what is recorded now."""

    async def move_pending(
        self, points: Sequence[tuple[str, str, int]], credit: Sequence[tuple[str, str, str, int]]
    ) -> None:
        """Add (or take) pending points (shop, customer, points) of accounts that exist, and
        pending store credit (shop, customer, currency, minor units)."""

    async def take_points_to_carry(
        self, shops: Sequence[str], *, limit: int
    ) -> list[tuple[str, str, int, int]]:
        """A chunk of the points accounts of `shops` with a balance other than zero, claimed:
        another pass skips them. Each as (shop, customer, balance, seq of its last entry)."""

    async def take_credit_to_carry(
        self, shops: Sequence[str], currencies: Sequence[str], *, limit: int
    ) -> list[tuple[str, str, str, int, int]]:
        """The same of store credit in `currencies`: (shop, customer, currency, balance, seq of
        its last entry)."""


class Orders(Protocol):
    async def known(self, keys: Sequence[OrderKey]) -> set[OrderKey]:
        """Which of these orders are recorded."""

    async def add(self, orders: Sequence[NewOrder], *, available: set[OrderKey]) -> None:
        """Record paid orders: those in `available` as available, the others pending with
        their points and credit pending."""

    async def lock_many(self, keys: Sequence[OrderKey]) -> dict[OrderKey, OrderRow]:
        """The recorded ones of these orders, locked until the transaction ends."""

    async def save_many(
        self, orders: Sequence[OrderRow], completed_at: dict[OrderKey, datetime]
    ) -> None: ...

    async def park_many(self, waiting: Sequence[Waiting]) -> None:
        """Events that wait for their order's payment."""

    async def unpark(self, keys: Sequence[OrderKey]) -> list[str]:
        """The events waiting for these orders, oldest first, taken off the waiting list."""

    async def take_for_release(
        self,
        *,
        orders: Sequence[OrderKey] | None,
        shops: Sequence[str] | None,
        due_by: datetime,
        limit: int,
    ) -> list[OrderRow]:
        """Pending orders due by `due_by` (among `orders`, or of `shops`, when given), marked
        available; those another transaction holds are skipped."""


class Counters(Protocol):
    async def lock_campaigns(
        self, totals: set[CampaignKey], usage: set[UsageKey]
    ) -> tuple[dict[CampaignKey, int], dict[UsageKey, int]]:
        """Lock the campaigns' totals until the transaction ends; the points everyone and each
        customer have had."""

    async def record_campaigns(self, granted: dict[UsageKey, int]) -> None: ...

    async def punch(self, adds: dict[CardKey, int]) -> dict[CardKey, int]:
        """Add punches; each card's count before them."""

    async def unpunch(self, takes: dict[CardKey, int]) -> None:
        """Take punches back, never below zero."""


class Memberships(Protocol):
    async def add(self, bought: Sequence[MembershipRecord]) -> set[tuple[str, str, str]]:
        """Record memberships; the (shop, order, sku) of those not recorded before."""

    async def of_orders(self, keys: Sequence[OrderKey]) -> dict[OrderKey, list[MembershipRow]]:
        """The memberships these orders paid for, by sku."""

    async def refund(self, refunds: Sequence[MembershipRefund]) -> None:
        """Per (shop, order, sku): the units refunded so far and when it ended, if it did."""


class Outbox(Protocol):
    async def add(self, messages: Sequence[OutboxMessage]) -> None:
        """Send these messages once the transaction commits."""


class Expiry(Protocol):
    """The expiry pass's view of the accounts: which are due, their points lines, the
    warnings sent, when to look again."""

    async def take_due(
        self, *, now: datetime, limit: int, shops: Sequence[str]
    ) -> list[DueAccount]:
        """A chunk of accounts due, claimed: another pass skips them."""

    async def lines(self, keys: Sequence[CustomerKey]) -> dict[CustomerKey, list[LedgerLine]]:
        """The points entries of each account, oldest first."""

    async def warnings_sent(self, keys: Sequence[CustomerKey]) -> dict[CustomerKey, set[str]]: ...

    async def record_warnings(
        self, warnings: Sequence[tuple[str, str, str, int, datetime]], *, sent_at: datetime
    ) -> set[tuple[str, str]]:
        """Record warnings (shop, id, customer, points, expires at); those new, (shop, id)."""

    async def schedule_checks(self, checks: Sequence[tuple[str, str, datetime]]) -> None: ...


class Inbox(Protocol):
    async def forget(self, event_ids: Sequence[str]) -> None:
        """These events leave the inbox: a replay of them is applied anew."""


class Customers(Protocol):
    """Earn's view of the customers of each account holder: birthdays and time zones, who
    referred them, their first paid order."""

    async def profiles(
        self, keys: Sequence[CustomerKey]
    ) -> dict[CustomerKey, tuple[date | None, str | None]]:
        """The birthday and time zone known of each customer."""

    async def record(self, seen: Sequence[CustomerSeen]) -> None:
        """One row per customer; None leaves a field as it was."""

    async def record_referrers(
        self, referrals: Sequence[tuple[str, str, str, str, datetime]]
    ) -> list[Referral]:
        """Note (holder, referred, referrer, event id, time), the first referrer known winning;
        the referrals this completes (the first order was paid already)."""

    async def record_first_orders(self, orders: Sequence[FirstOrder]) -> list[Referral]:
        """Note these first orders (`order_batch.first_orders`) of customers who had none on
        the account; the referrals this completes (the referrer was known already)."""

    async def mark_rewarded(self, referred: Sequence[CustomerKey]) -> None: ...

    async def take_birthdays(
        self, *, now: datetime, limit: int, shops: Sequence[str]
    ) -> list[BirthdayDue]:
        """A chunk of customers whose birthday has begun, claimed: another pass skips them."""

    async def set_next_birthdays(self, nexts: Sequence[tuple[str, str, datetime]]) -> None: ...


class Awards(Protocol):
    """Action awards decided, and the limit counters they count against."""

    async def decided(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (holder, award id) were decided already, granted or refused."""

    async def lock_counters(self, keys: Sequence[CounterKey]) -> dict[CounterKey, int]:
        """The limit counters, created when missing and locked until the transaction ends; what
        each has granted so far."""

    async def save_counters(self, used: dict[CounterKey, int]) -> None: ...

    async def record(self, rows: Sequence[AwardRow]) -> None: ...


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

    async def multipliers_at(self, paid: Sequence[tuple[str, str, datetime]]) -> list[Decimal]:
        """For each (shop, customer, paid at): the tier multiplier in force just before."""


class UnitOfWork(Protocol):
    # Read-only members: an implementation may hold more precise repositories (the fake's).
    @property
    def accounts(self) -> Accounts: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def tiers(self) -> Tiers: ...
    @property
    def orders(self) -> Orders: ...
    @property
    def counters(self) -> Counters: ...
    @property
    def memberships(self) -> Memberships: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def inbox(self) -> Inbox: ...
    @property
    def expiry(self) -> Expiry: ...
    @property
    def customers(self) -> Customers: ...
    @property
    def awards(self) -> Awards: ...
    @property
    def redemptions(self) -> Spends[Redemption]: ...
    @property
    def credit_spends(self) -> Spends[CreditSpend]: ...


# A new transaction's unit of work, for work that commits chunk by chunk (the scheduled passes).
Transactions = Callable[[], AbstractAsyncContextManager[UnitOfWork]]

"""Earn's unit of work in memory: the same repositories as services/earn/unit_of_work.py, over
dicts, so that the use cases run in unit tests. Balances move as the ledger's SQL moves them
(running balance_after per account, in the order the entries are given); an insert of a key
already held fails as the primary key would."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

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
    # (shop, customer) or (shop, customer, currency) -> seq of its last ledger entry
    last_seq: dict[tuple[str, ...], int] = field(default_factory=dict)

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

    async def held(self, customers: Sequence[CustomerKey]) -> dict[CustomerKey, int]:
        return {
            key: max(held[0], held[2]) + held[1]
            for key in customers
            if (held := self.points.get(key)) is not None
        }

    async def move_pending(
        self, points: Sequence[tuple[str, str, int]], credit: Sequence[tuple[str, str, str, int]]
    ) -> None:
        for shop, customer, delta in points:
            if (shop, customer) in self.points:  # an UPDATE: accounts that exist only
                self.points[(shop, customer)][1] += delta
        for shop, customer, currency, minor in credit:
            self.credit.setdefault((shop, customer, currency), [0, 0])[1] += minor

    async def take_points_to_carry(
        self, shops: Sequence[str], *, limit: int
    ) -> list[tuple[str, str, int, int]]:
        return [
            (shop, customer, held[0], self.last_seq.get((shop, customer), 0))
            for (shop, customer), held in sorted(self.points.items())
            if shop in shops and held[0] != 0
        ][:limit]

    async def take_credit_to_carry(
        self, shops: Sequence[str], currencies: Sequence[str], *, limit: int
    ) -> list[tuple[str, str, str, int, int]]:
        return [
            (shop, customer, currency, held[0], self.last_seq.get((shop, customer, currency), 0))
            for (shop, customer, currency), held in sorted(self.credit.items())
            if shop in shops and currency in currencies and held[0] != 0
        ][:limit]


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
        written: list[WrittenEntry] = []
        for e in entries:
            key: tuple[str, ...] = (e.shop_id, e.customer_id)
            if e.currency is None:
                held = self.accounts.points.setdefault((e.shop_id, e.customer_id), [0, 0, 0])
                held[2] += e.delta if e.kind == "earned" else 0
            else:
                key = (*key, e.currency)
                held = self.accounts.credit.setdefault(
                    (e.shop_id, e.customer_id, e.currency), [0, 0]
                )
            held[0] += e.delta
            self.accounts.last_seq[key] = len(self.entries) + len(written) + 1
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

    async def multipliers_at(self, paid: Sequence[tuple[str, str, datetime]]) -> list[Decimal]:
        found = []
        for shop, customer, at in paid:
            before = [
                t
                for t in self.seen.values()
                if (t.shop_id, t.customer_id) == (shop, customer) and t.effective_at < at
            ]
            last = max(before, key=lambda t: t.effective_at, default=None)
            found.append(Decimal(1) if last is None else last.multiplier)
        return found


@dataclass
class FakeOrders:
    accounts: FakeAccounts
    rows: dict[OrderKey, OrderRow] = field(default_factory=dict)
    breakdowns: dict[OrderKey, dict[str, Any]] = field(default_factory=dict)
    completed_at: dict[OrderKey, datetime] = field(default_factory=dict)
    waiting: dict[str, Waiting] = field(default_factory=dict)  # by event id

    async def known(self, keys: Sequence[OrderKey]) -> set[OrderKey]:
        return {k for k in keys if k in self.rows}

    async def add(self, orders: Sequence[NewOrder], *, available: set[OrderKey]) -> None:
        for o in orders:
            key = (o.shop_id, o.order_id)
            if key in self.rows:
                raise DuplicateKey("orders")
            status = "available" if key in available else "pending"
            self.rows[key] = OrderRow(
                o.shop_id, o.order_id, o.customer_id, o.currency, o.paid_event_id, o.paid_at,
                o.paid_total, o.points, o.credit_minor, list(o.punches), Decimal(0), 0, 0,
                status, o.release_at, None if o.holder_id == o.shop_id else o.holder_id,
            )  # fmt: skip
            self.breakdowns[key] = o.breakdown
            if key not in available:
                held = self.accounts.points.setdefault((o.holder_id, o.customer_id), [0, 0, 0])
                held[1] += o.points
                if o.credit_minor:
                    credit = (o.holder_id, o.customer_id, o.currency)
                    self.accounts.credit.setdefault(credit, [0, 0])[1] += o.credit_minor

    async def lock_many(self, keys: Sequence[OrderKey]) -> dict[OrderKey, OrderRow]:
        return {k: self.rows[k] for k in keys if k in self.rows}

    async def save_many(
        self, orders: Sequence[OrderRow], completed_at: dict[OrderKey, datetime]
    ) -> None:
        for o in orders:
            key = (o.shop_id, o.order_id)
            self.rows[key] = o
            if key in completed_at:
                self.completed_at[key] = completed_at[key]

    async def park_many(self, waiting: Sequence[Waiting]) -> None:
        for w in waiting:
            self.waiting.setdefault(w[0], w)  # ON CONFLICT (event_id) DO NOTHING

    async def take_for_release(
        self,
        *,
        orders: Sequence[OrderKey] | None,
        shops: Sequence[str] | None,
        due_by: datetime,
        limit: int,
    ) -> list[OrderRow]:
        due = sorted(
            (o for k, o in self.rows.items()
             if o.status == "pending" and o.release_at <= due_by
             and (orders is None or k in orders) and (shops is None or k[0] in shops)),
            key=lambda o: o.release_at,
        )[:limit]  # fmt: skip
        for o in due:
            self.rows[(o.shop_id, o.order_id)] = replace(o, status="available")
        return sorted(due, key=lambda o: (o.release_at, o.shop_id, o.order_id))

    async def unpark(self, keys: Sequence[OrderKey]) -> list[str]:
        asked = set(keys)
        taken = [w for w in self.waiting.values() if (w[1], w[2]) in asked]
        for w in taken:
            del self.waiting[w[0]]
        return [w[5] for w in sorted(taken, key=lambda w: (w[4], w[0]))]


@dataclass
class FakeCounters:
    totals: dict[CampaignKey, int] = field(default_factory=dict)
    usage: dict[UsageKey, int] = field(default_factory=dict)
    punches: dict[CardKey, int] = field(default_factory=dict)

    async def lock_campaigns(
        self, totals: set[CampaignKey], usage: set[UsageKey]
    ) -> tuple[dict[CampaignKey, int], dict[UsageKey, int]]:
        for key in totals:
            self.totals.setdefault(key, 0)
        return (
            {k: self.totals[k] for k in totals},
            {k: self.usage[k] for k in usage if k in self.usage},
        )

    async def record_campaigns(self, granted: dict[UsageKey, int]) -> None:
        for (shop, campaign, customer), points in granted.items():
            self.totals[(shop, campaign)] += points
            key = (shop, campaign, customer)
            self.usage[key] = self.usage.get(key, 0) + points

    async def punch(self, adds: dict[CardKey, int]) -> dict[CardKey, int]:
        before = {k: self.punches.get(k, 0) for k in adds}
        for k, n in adds.items():
            self.punches[k] = before[k] + n
        return before

    async def unpunch(self, takes: dict[CardKey, int]) -> None:
        for k, n in takes.items():
            if k in self.punches:
                self.punches[k] = max(self.punches[k] - n, 0)


@dataclass
class FakeMemberships:
    rows: dict[tuple[str, str, str], MembershipRow] = field(default_factory=dict)

    async def add(self, bought: Sequence[MembershipRecord]) -> set[tuple[str, str, str]]:
        recorded = set()
        for row in bought:
            key = (row[0], row[1], row[2])
            if key not in self.rows:  # ON CONFLICT DO NOTHING
                _, _, sku, customer, tier, starts, ends, quantity = row
                self.rows[key] = MembershipRow(sku, customer, tier, starts, ends, quantity, 0, None)
                recorded.add(key)
        return recorded

    async def of_orders(self, keys: Sequence[OrderKey]) -> dict[OrderKey, list[MembershipRow]]:
        found: dict[OrderKey, list[MembershipRow]] = {}
        for (shop, order, _), row in sorted(self.rows.items()):
            if (shop, order) in keys:
                found.setdefault((shop, order), []).append(row)
        return found

    async def refund(self, refunds: Sequence[MembershipRefund]) -> None:
        for shop, order, sku, units, at in refunds:
            row = self.rows[(shop, order, sku)]
            ended = row.cancelled_at or at
            self.rows[(shop, order, sku)] = replace(
                row, refunded_quantity=units, cancelled_at=ended
            )


@dataclass
class FakeOutbox:
    messages: list[OutboxMessage] = field(default_factory=list)

    async def add(self, messages: Sequence[OutboxMessage]) -> None:
        self.messages += messages


@dataclass
class FakeExpiry:
    """Accounts are due when a test says so (`due`); their points lines are the ledger's."""

    ledger: FakeLedger
    due: list[DueAccount] = field(default_factory=list)
    warnings: dict[tuple[str, str], tuple[str, int, datetime, datetime]] = field(
        default_factory=dict
    )
    checks: dict[CustomerKey, datetime] = field(default_factory=dict)

    async def take_due(
        self, *, now: datetime, limit: int, shops: Sequence[str]
    ) -> list[DueAccount]:
        taken = sorted(
            (a for a in self.due if a.shop_id in shops), key=lambda a: (a.shop_id, a.customer_id)
        )[:limit]
        self.due = [a for a in self.due if a not in taken]
        return taken

    async def lines(self, keys: Sequence[CustomerKey]) -> dict[CustomerKey, list[LedgerLine]]:
        found: dict[CustomerKey, list[LedgerLine]] = {k: [] for k in keys}
        for w in self.ledger.entries:
            e = w.entry
            if e.currency is None and (e.shop_id, e.customer_id) in found:
                line = LedgerLine(
                    e.kind, e.reason, e.delta, e.order_id, e.expires_at, e.occurred_at
                )
                found[(e.shop_id, e.customer_id)].append(line)
        return found

    async def warnings_sent(self, keys: Sequence[CustomerKey]) -> dict[CustomerKey, set[str]]:
        sent: dict[CustomerKey, set[str]] = {}
        for (shop, warning_id), (customer, *_) in self.warnings.items():
            if (shop, customer) in keys:
                sent.setdefault((shop, customer), set()).add(warning_id)
        return sent

    async def record_warnings(
        self, warnings: Sequence[tuple[str, str, str, int, datetime]], *, sent_at: datetime
    ) -> set[tuple[str, str]]:
        fresh = set()
        for shop, warning_id, customer, points, expires_at in warnings:
            if (shop, warning_id) not in self.warnings:  # ON CONFLICT DO NOTHING
                self.warnings[(shop, warning_id)] = (customer, points, expires_at, sent_at)
                fresh.add((shop, warning_id))
        return fresh

    async def schedule_checks(self, checks: Sequence[tuple[str, str, datetime]]) -> None:
        for shop, customer, at in checks:
            self.checks[(shop, customer)] = at


@dataclass
class FakeInbox:
    forgotten: list[str] = field(default_factory=list)

    async def forget(self, event_ids: Sequence[str]) -> None:
        self.forgotten += event_ids


@dataclass
class CustomerRow:
    birthday: date | None = None
    time_zone: str | None = None
    next_birthday_at: datetime | None = None
    referrer_id: str | None = None
    referral_event_id: str | None = None
    referral_at: datetime | None = None
    first_order_id: str | None = None
    first_order_event_id: str | None = None
    first_paid_at: datetime | None = None
    referral_rewarded: bool = False


@dataclass
class FakeCustomers:
    """The customers projection by (holder, customer)."""

    rows: dict[CustomerKey, CustomerRow] = field(default_factory=dict)

    async def profiles(
        self, keys: Sequence[CustomerKey]
    ) -> dict[CustomerKey, tuple[date | None, str | None]]:
        return {k: (r.birthday, r.time_zone) for k in keys if (r := self.rows.get(k)) is not None}

    async def record(self, seen: Sequence[CustomerSeen]) -> None:
        for s in seen:
            row = self.rows.setdefault((s.shop_id, s.customer_id), CustomerRow())
            row.birthday = s.birthday or row.birthday
            row.time_zone = s.time_zone or row.time_zone
            row.next_birthday_at = s.next_birthday_at or row.next_birthday_at

    async def record_referrers(
        self, referrals: Sequence[tuple[str, str, str, str, datetime]]
    ) -> list[Referral]:
        touched = []
        for shop, referred, referrer, event_id, at in referrals:
            row = self.rows.setdefault((shop, referred), CustomerRow())
            if row.referrer_id is None:  # the first referrer known wins
                row.referrer_id, row.referral_event_id, row.referral_at = referrer, event_id, at
                touched.append((shop, referred))
        return self._complete(touched)

    async def record_first_orders(self, orders: Sequence[FirstOrder]) -> list[Referral]:
        touched = []
        for holder, customer, order_id, event_id, paid_at in orders:
            row = self.rows.setdefault((holder, customer), CustomerRow())
            if row.first_order_id is None:
                row.first_order_id, row.first_order_event_id = order_id, event_id
                row.first_paid_at = paid_at
                touched.append((holder, customer))
        return self._complete(touched)

    def _complete(self, keys: Sequence[CustomerKey]) -> list[Referral]:
        return [
            Referral(shop, customer, r.referrer_id, r.referral_event_id, r.referral_at,
                     r.first_order_id, r.first_order_event_id, r.first_paid_at)
            for shop, customer in keys
            if (r := self.rows[(shop, customer)]).referrer_id is not None
            and r.referral_event_id is not None and r.referral_at is not None
            and r.first_order_id is not None and r.first_order_event_id is not None
            and r.first_paid_at is not None and not r.referral_rewarded
        ]  # fmt: skip

    async def mark_rewarded(self, referred: Sequence[CustomerKey]) -> None:
        for key in referred:
            self.rows[key].referral_rewarded = True

    async def take_birthdays(
        self, *, now: datetime, limit: int, shops: Sequence[str]
    ) -> list[BirthdayDue]:
        due = sorted(
            (r.next_birthday_at, shop, customer, r.birthday, r.time_zone)
            for (shop, customer), r in self.rows.items()
            if r.next_birthday_at is not None and r.next_birthday_at <= now and shop in shops
        )[:limit]
        return [
            BirthdayDue(shop, customer, birthday, zone, at)
            for at, shop, customer, birthday, zone in due
            if birthday is not None and zone is not None
        ]

    async def set_next_birthdays(self, nexts: Sequence[tuple[str, str, datetime]]) -> None:
        for shop, customer, at in nexts:
            self.rows[(shop, customer)].next_birthday_at = at


@dataclass
class FakeAwards:
    decisions: dict[tuple[str, str], AwardRow] = field(default_factory=dict)
    counters: dict[CounterKey, int] = field(default_factory=dict)

    async def decided(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return {k for k in keys if k in self.decisions}

    async def lock_counters(self, keys: Sequence[CounterKey]) -> dict[CounterKey, int]:
        for key in keys:
            self.counters.setdefault(key, 0)
        return {k: self.counters[k] for k in keys}

    async def save_counters(self, used: dict[CounterKey, int]) -> None:
        self.counters.update(used)

    async def record(self, rows: Sequence[AwardRow]) -> None:
        for row in rows:
            if (row.shop_id, row.award_id) in self.decisions:
                raise DuplicateKey("action_awards")
            self.decisions[(row.shop_id, row.award_id)] = row


class FakeUnitOfWork:
    """Every repository in memory; `credit` and `give` set balances up for a test."""

    def __init__(self) -> None:
        self.accounts = FakeAccounts()
        self.ledger = FakeLedger(self.accounts)
        self.tiers = FakeTiers()
        self.orders = FakeOrders(self.accounts)
        self.counters = FakeCounters()
        self.memberships = FakeMemberships()
        self.outbox = FakeOutbox()
        self.inbox = FakeInbox()
        self.expiry = FakeExpiry(self.ledger)
        self.customers = FakeCustomers()
        self.awards = FakeAwards()
        self.redemptions: FakeSpends[Redemption] = FakeSpends("redemption_id")
        self.credit_spends: FakeSpends[CreditSpend] = FakeSpends("spend_id")

    def give(self, shop_id: str, customer_id: str, points: int, *, pending: int = 0) -> None:
        self.accounts.points[(shop_id, customer_id)] = [points, pending, max(points, 0)]

    def credit(
        self, shop_id: str, customer_id: str, currency: str, minor: int, *, pending: int = 0
    ) -> None:
        self.accounts.credit[(shop_id, customer_id, currency)] = [minor, pending]

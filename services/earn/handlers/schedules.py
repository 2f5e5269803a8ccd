"""The scheduled passes, a chunk per transaction: points past their date expire and warnings
go out; birthdays begun are awarded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from services.earn.adapters.expiry import DueAccount
from services.earn.adapters.ledger import SOURCE, TOPIC
from services.earn.domain.actions import Award, birthday_after, local_year
from services.earn.domain.expiry import (
    ExpiringAccount,
    ExpiryPlan,
    ExpiryWarning,
    account_of,
    plan_expiry,
)
from services.earn.domain.ledger import expired_entry
from services.earn.handlers.actions import grant_awards
from services.earn.programme_book import ProgrammeBook
from services.earn.unit_of_work import Transactions, UnitOfWork
from shared.events import PointsExpiring, encode_event, make_event
from shared.holders import shop_scoped
from shared.outbox import OutboxMessage

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    accounts: int
    expired_points: int
    warnings: int


async def expire_due(
    transactions: Transactions, programmes: ProgrammeBook, *, now: datetime, chunk: int
) -> ExpiryReport:
    """Everything due by `now`, chunk by chunk, each chunk committed on its own."""
    accounts = points = warnings = 0
    while True:
        async with transactions() as uow:
            done, expired, warned = await _expire_chunk(uow, programmes, now=now, limit=chunk)
        accounts, points, warnings = accounts + done, points + expired, warnings + warned
        if done < chunk:
            break
    if accounts:
        log.info(
            "expiry_pass_done",
            at=now.isoformat(),
            accounts=accounts,
            expired_points=points,
            warnings=warnings,
        )
    return ExpiryReport(accounts, points, warnings)


async def _expire_chunk(
    uow: UnitOfWork, programmes: ProgrammeBook, *, now: datetime, limit: int
) -> tuple[int, int, int]:
    """One chunk of the expiry pass in the caller's transaction: (accounts, points, warnings).
    Each account is planned under its shop's programme in force now. Only the shops the book
    knows whose points expire are looked at: the accounts of the others are left as they are
    (due at once should that change)."""
    shops = [s for s in programmes.shops() if programmes.at(s, now).expiry.mode != "never"]
    if not shops:
        return 0, 0, 0
    due = await uow.expiry.take_due(now=now, limit=limit, shops=shops)
    keys = [(a.shop_id, a.customer_id) for a in due]
    lines = await uow.expiry.lines(keys)
    sent = await uow.expiry.warnings_sent(keys)
    plans: list[tuple[DueAccount, ExpiryPlan]] = []
    for a, key in zip(due, keys, strict=True):
        account = account_of(
            a.customer_id,
            balance=a.balance,
            last_order_at=a.last_order_at,
            lines=lines[key],
            warned=frozenset(sent.get(key, ())),
        )
        plans.append((a, _expiry_plan(programmes, a.shop_id, account, now)))
    entries = [
        expired_entry(
            a.shop_id,
            plan.entry_id,
            a.customer_id,
            plan.expire,
            reason=plan.reason or "expiry",
            at=plan.expired_at or now,
            at_shop=a.last_shop_id,
        )
        for a, plan in plans
        if plan.expire > 0 and plan.entry_id is not None
    ]
    await uow.ledger.write(entries)
    warnings = [(a, w, a.balance - plan.expire) for a, plan in plans for w in plan.warnings]
    fresh = await uow.expiry.record_warnings(
        [(a.shop_id, w.warning_id, a.customer_id, w.points, w.expires_at) for a, w, _ in warnings],
        sent_at=now,
    )
    await uow.outbox.add(
        [
            _expiry_warning(a, w, balance, now)
            for a, w, balance in warnings
            if (a.shop_id, w.warning_id) in fresh
        ],
    )
    await uow.expiry.schedule_checks(
        [(a.shop_id, a.customer_id, plan.next_check_at) for a, plan in plans]
    )
    return len(due), sum(-e.delta for e in entries), len(fresh)


def _expiry_plan(
    programmes: ProgrammeBook, shop_id: str, account: ExpiringAccount, now: datetime
) -> ExpiryPlan:
    """What the pass does to the account under its shop's programme in force now."""
    programme = programmes.at(shop_id, now)
    return plan_expiry(programme.expiry, account, now, programme.zone)


def _expiry_warning(
    account: DueAccount, w: ExpiryWarning, balance: int, now: datetime
) -> OutboxMessage:
    customer = account.customer_id
    event = make_event(
        "points.expiring",
        source=SOURCE,
        subject=customer,
        id=shop_scoped(account.shop_id, w.warning_id),
        time=now,
        data=PointsExpiring(
            customer_id=customer,
            shop_id=account.shop_id,
            at_shop=account.last_shop_id,
            points=w.points,
            expires_at=w.expires_at,
            balance=balance,
        ),
    )
    return OutboxMessage(TOPIC, customer.encode(), encode_event(event))


async def award_birthdays(
    transactions: Transactions, programmes: ProgrammeBook, *, now: datetime, chunk: int
) -> int:
    """Every birthday begun by `now`, chunk by chunk, each chunk committed on its own; the
    number of customers looked at."""
    customers = 0
    while True:
        async with transactions() as uow:
            done = await _birthday_chunk(uow, programmes, now=now, limit=chunk)
        customers += done
        if done < chunk:
            break
    if customers:
        log.info("birthday_pass_done", at=now.isoformat(), customers=customers)
    return customers


async def _birthday_chunk(
    uow: UnitOfWork, programmes: ProgrammeBook, *, now: datetime, limit: int
) -> int:
    """Award the birthdays begun by `now` (local midnight in each customer's zone), a chunk of
    customers of the shops the book knows claimed with SKIP LOCKED; `birthday:<customer>:<year>`
    is given at most once per account, under its holder's programme when the birthday began."""
    due = await uow.customers.take_birthdays(now=now, limit=limit, shops=programmes.shops())
    awards = []
    nexts = []
    for d in due:
        zone = ZoneInfo(d.time_zone)
        points = programmes.at(d.shop_id, d.due_at).actions.birthday
        if points is not None:
            award_id = shop_scoped(
                d.shop_id, f"birthday:{d.customer_id}:{local_year(d.due_at, zone)}"
            )
            awards.append(
                Award(d.shop_id, award_id, "birthday", d.customer_id, points, d.due_at, None)
            )
        nexts.append((d.shop_id, d.customer_id, birthday_after(d.birthday, zone, d.due_at, now)))
    await uow.ledger.write(await grant_awards(uow, awards, programmes))
    await uow.customers.set_next_birthdays(nexts)
    return len(due)

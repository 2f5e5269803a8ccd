"""The scheduled work of earn: expiring points (with their warnings) and birthday points.

Both claim their rows a chunk at a time with FOR UPDATE SKIP LOCKED, each chunk in its own
transaction, so any number of replicas (and `loyalty earn expire`) can run them at once
without doing an account or a birthday twice; entry and event ids are deterministic besides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from services.earn.actions import award_birthdays
from services.earn.adapters import expiry as store
from services.earn.adapters.expiry import DueAccount
from services.earn.adapters.ledger import SCHEMA, SOURCE, TOPIC
from services.earn.domain.expiry import (
    ExpiringAccount,
    ExpiryPlan,
    ExpiryWarning,
    account_of,
    plan_expiry,
)
from services.earn.domain.ledger import expired_entry, shop_scoped
from services.earn.entries import write_entries
from services.earn.programme_book import ProgrammeBook
from shared.db import ACQUIRE_TIMEOUT_S, Connection
from shared.events import PointsExpiring, encode_event, make_event
from shared.outbox import OutboxMessage, enqueue

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    accounts: int
    expired_points: int
    warnings: int


async def expire_chunk(
    conn: Connection, programmes: ProgrammeBook, *, now: datetime, limit: int
) -> tuple[int, int, int]:
    """One chunk of the expiry pass in the caller's transaction: (accounts, points, warnings).
    Each account is planned under its shop's programme in force now. Only the shops the book
    knows whose points expire are looked at: the accounts of the others are left as they are
    (due at once should that change)."""
    shops = [s for s in programmes.shops() if programmes.at(s, now).expiry.mode != "never"]
    if not shops:
        return 0, 0, 0
    due = await store.take_due_accounts(conn, now=now, limit=limit, shops=shops)
    keys = [(a.shop_id, a.customer_id) for a in due]
    lines = await store.points_lines(conn, keys)
    sent = await store.warnings_sent(conn, keys)
    plans: list[tuple[DueAccount, ExpiryPlan]] = []
    for a, key in zip(due, keys, strict=True):
        account = account_of(
            a.customer_id,
            balance=a.balance,
            last_order_at=a.last_order_at,
            lines=lines[key],
            warned=frozenset(sent.get(key, ())),
        )
        plans.append((a, _plan(programmes, a.shop_id, account, now)))
    entries = [
        expired_entry(
            a.shop_id,
            plan.entry_id,
            a.customer_id,
            plan.expire,
            reason=plan.reason or "expiry",
            at=plan.expired_at or now,
        )
        for a, plan in plans
        if plan.expire > 0 and plan.entry_id is not None
    ]
    await write_entries(conn, entries)
    warnings = [(a, w, a.balance - plan.expire) for a, plan in plans for w in plan.warnings]
    fresh = await store.record_warnings(
        conn,
        [(a.shop_id, w.warning_id, a.customer_id, w.points, w.expires_at) for a, w, _ in warnings],
        sent_at=now,
    )
    await enqueue(
        conn,
        SCHEMA,
        [_warning(a, w, b, now) for a, w, b in warnings if (a.shop_id, w.warning_id) in fresh],
    )
    await store.schedule_checks(
        conn, [(a.shop_id, a.customer_id, plan.next_check_at) for a, plan in plans]
    )
    return len(due), sum(-e.delta for e in entries), len(fresh)


def _plan(
    programmes: ProgrammeBook, shop_id: str, account: ExpiringAccount, now: datetime
) -> ExpiryPlan:
    """What the pass does to the account under its shop's programme in force now."""
    programme = programmes.at(shop_id, now)
    return plan_expiry(programme.expiry, account, now, programme.zone)


def _warning(account: DueAccount, w: ExpiryWarning, balance: int, now: datetime) -> OutboxMessage:
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
            points=w.points,
            expires_at=w.expires_at,
            balance=balance,
        ),
    )
    return OutboxMessage(TOPIC, customer.encode(), encode_event(event))


async def run_expiry(
    pool: asyncpg.Pool, programmes: ProgrammeBook, *, now: datetime, chunk: int
) -> ExpiryReport:
    """Everything due by `now`, chunk by chunk, each chunk committed on its own."""
    accounts = points = warnings = 0
    while True:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            done, expired, warned = await expire_chunk(conn, programmes, now=now, limit=chunk)
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


async def run_birthdays(
    pool: asyncpg.Pool, programmes: ProgrammeBook, *, now: datetime, chunk: int
) -> int:
    """Every birthday begun by `now`, chunk by chunk; the number of customers looked at."""
    customers = 0
    while True:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            done = await award_birthdays(conn, programmes, now=now, limit=chunk)
        customers += done
        if done < chunk:
            break
    if customers:
        log.info("birthday_pass_done", at=now.isoformat(), customers=customers)
    return customers

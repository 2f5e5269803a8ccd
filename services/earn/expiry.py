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
from services.earn.adapters.ledger import SCHEMA, NewEntry
from services.earn.domain.expiry import ExpiryPlan, ExpiryWarning, account_of, plan_expiry
from services.earn.entries import SOURCE, TOPIC, write_entries
from services.earn.programme import Programme
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
    conn: Connection, programme: Programme, *, now: datetime, limit: int
) -> tuple[int, int, int]:
    """One chunk of the expiry pass in the caller's transaction: (accounts, points, warnings)."""
    if programme.expiry.mode == "never":
        return 0, 0, 0
    due = await store.take_due_accounts(conn, now=now, limit=limit)
    ids = [a.customer_id for a in due]
    lines = await store.points_lines(conn, ids)
    sent = await store.warnings_sent(conn, ids)
    plans: list[tuple[str, int, ExpiryPlan]] = []
    for a in due:
        account = account_of(
            a.customer_id,
            balance=a.balance,
            last_order_at=a.last_order_at,
            lines=lines[a.customer_id],
            warned=frozenset(sent.get(a.customer_id, ())),
        )
        plans.append(
            (a.customer_id, a.balance, plan_expiry(programme.expiry, account, now, programme.zone))
        )
    entries = [
        NewEntry(
            entry_id=plan.entry_id,
            customer_id=customer,
            kind="expired",
            delta=-plan.expire,
            reason=plan.reason or "expiry",
            order_id=None,
            source_event_id=None,
            occurred_at=plan.expired_at or now,
        )
        for customer, _, plan in plans
        if plan.expire > 0 and plan.entry_id is not None
    ]
    await write_entries(conn, entries)
    warnings = [
        (customer, w, balance - plan.expire)
        for customer, balance, plan in plans
        for w in plan.warnings
    ]
    fresh = await store.record_warnings(
        conn, [(w.warning_id, c, w.points, w.expires_at) for c, w, _ in warnings], sent_at=now
    )
    await enqueue(
        conn, SCHEMA, [_warning(c, w, b, now) for c, w, b in warnings if w.warning_id in fresh]
    )
    await store.schedule_checks(
        conn, [(customer, plan.next_check_at) for customer, _, plan in plans]
    )
    return len(due), sum(-e.delta for e in entries), len(fresh)


def _warning(customer: str, w: ExpiryWarning, balance: int, now: datetime) -> OutboxMessage:
    event = make_event(
        "points.expiring",
        source=SOURCE,
        subject=customer,
        id=w.warning_id,
        time=now,
        data=PointsExpiring(
            customer_id=customer, points=w.points, expires_at=w.expires_at, balance=balance
        ),
    )
    return OutboxMessage(TOPIC, customer.encode(), encode_event(event))


async def run_expiry(
    pool: asyncpg.Pool, programme: Programme, *, now: datetime, chunk: int
) -> ExpiryReport:
    """Everything due by `now`, chunk by chunk, each chunk committed on its own."""
    accounts = points = warnings = 0
    while True:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            done, expired, warned = await expire_chunk(conn, programme, now=now, limit=chunk)
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
    pool: asyncpg.Pool, programme: Programme, *, now: datetime, chunk: int
) -> int:
    """Every birthday begun by `now`, chunk by chunk; the number of customers looked at."""
    customers = 0
    while True:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            done = await award_birthdays(conn, programme, now=now, limit=chunk)
        customers += done
        if done < chunk:
            break
    if customers:
        log.info("birthday_pass_done", at=now.isoformat(), customers=customers)
    return customers

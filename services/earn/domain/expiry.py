"""When earned points expire, and how many expire by a date when spending takes the oldest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from services.earn.domain.calendar import add_months, end_of_period
from services.earn.programme import Expiry


def expires_at_for(expiry: Expiry, earned_at: datetime, zone: ZoneInfo) -> datetime | None:
    """after_months: `months` after earning; end_of_period: the end of the month or year that
    falls `months` after earning, in the shop's time zone; never and inactivity: no date of
    their own (inactivity expires a whole balance after `months` without an order)."""
    if expiry.mode == "after_months":
        return add_months(earned_at, expiry.months)
    if expiry.mode == "end_of_period":
        return end_of_period(
            add_months(earned_at.astimezone(zone), expiry.months), expiry.period, zone
        )
    return None


def due_to_expire(credits_expiring_by: int, consumed: int, expired_before: int) -> int:
    """Points that expire now, spending having taken the oldest points first.

    `credits_expiring_by` is the sum of earnings whose date has passed, `consumed` every point
    taken out so far by anything but expiry (redemptions, reversals, deductions) and
    `expired_before` what expired already: what was consumed is counted against the oldest
    earnings, so only the unspent rest of the expired earnings goes.
    """
    return max(credits_expiring_by - consumed - expired_before, 0)


# The expiry pass: what an account's ledger says, and what to do about it now.

NEVER: Final = datetime.max.replace(tzinfo=UTC)
INACTIVITY: Final = "inactivity"
EXPIRY_DATE: Final = "expiry_date"


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """A points entry of the account, as the expiry pass reads it."""

    kind: str
    reason: str
    delta: int
    order_id: str | None
    expires_at: datetime | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Lot:
    """Points with an expiry date: an earning, net of what reversals of its order took back."""

    expires_at: datetime
    points: int


@dataclass(frozen=True, slots=True)
class ExpiringAccount:
    customer_id: str
    balance: int
    consumed: int  # redeemed (net of redemptions cancelled) and deducted
    expired: int  # expired so far
    lots: tuple[Lot, ...]
    last_activity: datetime | None  # where the inactivity clock starts
    warned: frozenset[str]  # ids of the warnings already sent


@dataclass(frozen=True, slots=True)
class ExpiryWarning:
    warning_id: str
    points: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ExpiryPlan:
    expire: int  # points to expire now (0: none)
    entry_id: str | None
    reason: str | None
    expired_at: datetime | None  # when they expired: the newest lot's date, or the deadline
    warnings: tuple[ExpiryWarning, ...]
    next_check_at: datetime  # NEVER when nothing can fall due without new points


def account_of(
    customer_id: str,
    *,
    balance: int,
    last_order_at: datetime | None,
    lines: Sequence[LedgerLine],
    warned: frozenset[str] = frozenset(),
) -> ExpiringAccount:
    """Sum up a points ledger for the expiry pass.

    A reversal takes its points from its own order's earning (not from the oldest points);
    redemptions, cancelled redemptions (restored) and deductions are consumption, counted
    against the oldest points. The inactivity clock starts at the last paid order, or at the
    first points earned since the last inactivity expiry when that is later.
    """
    reversed_by_order: dict[str, int] = {}
    for line in lines:
        if line.kind == "reversed" and line.order_id is not None:
            reversed_by_order[line.order_id] = reversed_by_order.get(line.order_id, 0) + line.delta
    lots = []
    consumed = expired = 0
    last_inactivity: datetime | None = None
    for line in lines:
        if line.delta > 0 and line.expires_at is not None and line.kind != "restored":
            taken = reversed_by_order.get(line.order_id or "", 0) if line.kind == "earned" else 0
            lots.append(Lot(line.expires_at, max(line.delta + taken, 0)))
        elif line.kind in ("redeemed", "restored") or (line.kind == "adjusted" and line.delta < 0):
            consumed -= line.delta
        elif line.kind == "expired":
            expired -= line.delta
            if line.reason == INACTIVITY:
                last_inactivity = max(last_inactivity or line.occurred_at, line.occurred_at)
    fresh = [
        line.occurred_at
        for line in lines
        if line.delta > 0 and (last_inactivity is None or line.occurred_at > last_inactivity)
    ]
    starts = [t for t in (last_order_at, min(fresh, default=None)) if t is not None]
    return ExpiringAccount(
        customer_id=customer_id,
        balance=balance,
        consumed=consumed,
        expired=expired,
        lots=tuple(sorted(lots, key=lambda lot: lot.expires_at)),
        last_activity=max(starts, default=None),
        warned=warned,
    )


def plan_expiry(
    expiry: Expiry, account: ExpiringAccount, now: datetime, zone: ZoneInfo
) -> ExpiryPlan:
    """What the pass at `now` does to one account: expire, warn, and when to look again."""
    if expiry.mode == "inactivity":
        return _plan_inactivity(expiry, account, now, zone)
    if expiry.mode in ("after_months", "end_of_period"):
        return _plan_lots(expiry, account, now, zone)
    return ExpiryPlan(0, None, None, None, (), NEVER)


def _plan_inactivity(
    expiry: Expiry, account: ExpiringAccount, now: datetime, zone: ZoneInfo
) -> ExpiryPlan:
    if account.balance <= 0 or account.last_activity is None:
        return ExpiryPlan(0, None, None, None, (), NEVER)
    deadline = add_months(account.last_activity, expiry.months)
    if deadline <= now:
        entry_id = f"expire:{account.customer_id}:{_stamp(deadline)}"
        return ExpiryPlan(account.balance, entry_id, INACTIVITY, deadline, (), NEVER)
    warn_at = deadline - timedelta(days=expiry.warn_days)
    warning_id = f"expiring:{account.customer_id}:{deadline.astimezone(zone).date().isoformat()}"
    if expiry.warn_days == 0 or warning_id in account.warned:
        return ExpiryPlan(0, None, None, None, (), deadline)
    if warn_at <= now:
        warning = ExpiryWarning(warning_id, account.balance, deadline)
        return ExpiryPlan(0, None, None, None, (warning,), deadline)
    return ExpiryPlan(0, None, None, None, (), warn_at)


def _plan_lots(
    expiry: Expiry, account: ExpiringAccount, now: datetime, zone: ZoneInfo
) -> ExpiryPlan:
    def due(through: datetime, expired: int, balance: int) -> int:
        earned = sum(lot.points for lot in account.lots if lot.expires_at <= through)
        return min(due_to_expire(earned, account.consumed, expired), max(balance, 0))

    expire = due(now, account.expired, account.balance)
    past = [lot.expires_at for lot in account.lots if lot.expires_at <= now]
    expired_at = max(past) if expire > 0 else None
    entry_id = (
        f"expire:{account.customer_id}:{_stamp(expired_at)}:{account.expired}"
        if expired_at is not None
        else None
    )
    expired, balance = account.expired + expire, account.balance - expire
    by_day: dict[date, list[datetime]] = {}
    for lot in account.lots:
        if lot.expires_at > now:
            by_day.setdefault(lot.expires_at.astimezone(zone).date(), []).append(lot.expires_at)
    warnings = []
    checks = [min(times) for times in by_day.values()]
    horizon = now + timedelta(days=expiry.warn_days)
    for day, times in sorted(by_day.items()):
        first, last = min(times), max(times)
        warning_id = f"expiring:{account.customer_id}:{day.isoformat()}"
        if expiry.warn_days == 0 or warning_id in account.warned:
            continue
        if first > horizon:
            checks.append(first - timedelta(days=expiry.warn_days))
            continue
        before = due(first - timedelta(microseconds=1), expired, balance)
        points = due(last, expired, balance) - before
        if points > 0:
            warnings.append(ExpiryWarning(warning_id, points, first))
    reason = EXPIRY_DATE if expire > 0 else None
    return ExpiryPlan(
        expire, entry_id, reason, expired_at, tuple(warnings), min(checks, default=NEVER)
    )


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

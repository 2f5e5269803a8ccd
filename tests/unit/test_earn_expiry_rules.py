"""Expiry, worked examples: dates after N months and at period ends (across the year's end),
spending oldest first with redemptions in between, reversals, warnings, inactivity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.earn.domain.expiry import (
    INACTIVITY,
    NEVER,
    LedgerLine,
    account_of,
    expires_at_for,
    plan_expiry,
)
from services.earn.programme import Expiry

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
JAN = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def at(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, 3, 0, tzinfo=UTC)


def earned(
    points: int, when: datetime, expires: datetime | None, order: str | None = None
) -> LedgerLine:
    return LedgerLine("earned", "order.paid", points, order, expires, when)


def taken(kind: str, points: int, when: datetime, order: str | None = None) -> LedgerLine:
    return LedgerLine(kind, kind, points, order, None, when)


AFTER_12 = Expiry(mode="after_months", months=12, warn_days=30)


def test_after_months_expires_each_earning_months_later_the_31st_becoming_the_last_day() -> None:
    expiry = Expiry(mode="after_months", months=1)
    assert expires_at_for(expiry, datetime(2026, 1, 31, 3, tzinfo=UTC), HCM) == datetime(
        2026, 2, 28, 3, tzinfo=UTC
    )
    assert expires_at_for(AFTER_12, at(3, 5), HCM) == at(3, 5, 2027)


def test_end_of_period_dates_across_the_years_end_in_the_shops_zone() -> None:
    month = Expiry(mode="end_of_period", months=1, period="month")
    # 15 November 2026 + 1 month is in December: points last until 1 January 2027, 00:00 +07.
    assert expires_at_for(month, at(11, 15), HCM) == datetime(2027, 1, 1, tzinfo=HCM)
    year = Expiry(mode="end_of_period", months=12, period="year")
    # 31 December 18:00 UTC is already 1 January 2027 in Ho Chi Minh City: + 12 months is in
    # 2028, so the points last until the end of 2028.
    new_year = datetime(2026, 12, 31, 18, 0, tzinfo=UTC)
    assert expires_at_for(year, new_year, HCM) == datetime(2029, 1, 1, tzinfo=HCM)
    assert expires_at_for(year, new_year, ZoneInfo("UTC")) == datetime(2028, 1, 1, tzinfo=UTC)
    assert expires_at_for(Expiry(mode="never"), new_year, HCM) is None
    assert expires_at_for(Expiry(mode="inactivity"), new_year, HCM) is None


def fifo_account(*extra: LedgerLine) -> list[LedgerLine]:
    return [
        earned(100, at(1, 10), at(1, 10, 2027), "o-1"),
        earned(50, at(3, 10), at(3, 10, 2027), "o-2"),
        *extra,
    ]


def test_spending_takes_the_oldest_points_first() -> None:
    # 100 + 50 earned, 120 redeemed in between: the first 100 are gone, 30 of the 50 remain.
    lines = fifo_account(taken("redeemed", -120, at(2, 1)))
    account = account_of("c-1", balance=30, last_order_at=None, lines=lines)

    january = plan_expiry(AFTER_12, account, at(1, 11, 2027), HCM)
    assert january.expire == 0
    march = plan_expiry(AFTER_12, account, at(3, 11, 2027), HCM)
    assert (march.expire, march.expired_at) == (30, at(3, 10, 2027))
    assert march.entry_id == "expire:c-1:20270310T030000Z:0"


def test_points_of_a_cancelled_redemption_count_as_unspent() -> None:
    lines = fifo_account(taken("redeemed", -120, at(2, 1)), taken("restored", 70, at(2, 5)))
    account = account_of("c-1", balance=100, last_order_at=None, lines=lines)
    # Consumed 50 net: 50 of the January earning expire in January, then all 50 of March's.
    january = plan_expiry(AFTER_12, account, at(1, 11, 2027), HCM)
    assert january.expire == 50
    after = account_of(
        "c-1",
        balance=50,
        last_order_at=None,
        lines=[*lines, LedgerLine("expired", "expiry_date", -50, None, None, at(1, 10, 2027))],
    )
    assert plan_expiry(AFTER_12, after, at(3, 11, 2027), HCM).expire == 50
    assert plan_expiry(AFTER_12, after, at(3, 11, 2027), HCM).entry_id == (
        "expire:c-1:20270310T030000Z:50"
    )


def test_a_refund_takes_back_its_own_orders_points_not_the_oldest() -> None:
    lines = fifo_account(taken("reversed", -50, at(4, 1), "o-2"))
    account = account_of("c-1", balance=100, last_order_at=None, lines=lines)
    assert plan_expiry(AFTER_12, account, at(1, 11, 2027), HCM).expire == 100
    assert account.lots[1].points == 0


def test_expiry_never_takes_a_balance_below_zero_and_an_empty_balance_expires_nothing() -> None:
    # A reversal after spending left the balance at -20: nothing expires.
    lines = fifo_account(taken("redeemed", -150, at(4, 1)), taken("reversed", -20, at(5, 1)))
    account = account_of("c-1", balance=-20, last_order_at=None, lines=lines)
    assert plan_expiry(AFTER_12, account, at(6, 1, 2027), HCM).expire == 0
    # A deduction took 130 of 150: only 20 can expire, whatever the earnings say.
    deducted = [*fifo_account(), LedgerLine("adjusted", "fix", -130, None, None, at(4, 1))]
    account = account_of("c-1", balance=20, last_order_at=None, lines=deducted)
    assert plan_expiry(AFTER_12, account, at(6, 1, 2027), HCM).expire == 20


def test_a_warning_names_the_points_expiring_on_a_day_within_warn_days() -> None:
    lines = fifo_account(taken("redeemed", -30, at(2, 1)))
    account = account_of("c-1", balance=120, last_order_at=None, lines=lines)
    now = at(12, 15)  # 26 days before 10 January 2027
    plan = plan_expiry(AFTER_12, account, now, HCM)

    assert plan.expire == 0
    [warning] = plan.warnings
    assert (warning.warning_id, warning.points, warning.expires_at) == (
        "expiring:c-1:2027-01-10",
        70,
        at(1, 10, 2027),
    )
    # Look again when January's points expire (March's warning is later than that).
    assert plan.next_check_at == at(1, 10, 2027)

    warned = account_of(
        "c-1",
        balance=120,
        last_order_at=None,
        lines=lines,
        warned=frozenset({"expiring:c-1:2027-01-10"}),
    )
    assert plan_expiry(AFTER_12, warned, now, HCM).warnings == ()


def test_before_the_warning_window_the_next_look_is_when_it_opens() -> None:
    account = account_of("c-1", balance=150, last_order_at=None, lines=fifo_account())
    plan = plan_expiry(AFTER_12, account, at(6, 1), HCM)
    assert (plan.expire, plan.warnings) == (0, ())
    assert plan.next_check_at == at(1, 10, 2027) - timedelta(days=30)


def test_nothing_left_to_expire_means_no_look_until_new_points() -> None:
    lines = fifo_account(taken("redeemed", -150, at(4, 1)))
    account = account_of("c-1", balance=0, last_order_at=None, lines=lines)
    plan = plan_expiry(AFTER_12, account, at(4, 1, 2027), HCM)
    assert (plan.expire, plan.warnings, plan.next_check_at) == (0, (), NEVER)


INACTIVE_6 = Expiry(mode="inactivity", months=6, warn_days=14)


def test_inactivity_expires_the_whole_balance_months_after_the_last_order() -> None:
    lines = fifo_account(taken("redeemed", -40, at(4, 1)))
    account = account_of("c-1", balance=110, last_order_at=at(3, 10), lines=lines)

    early = plan_expiry(INACTIVE_6, account, at(8, 1), HCM)
    assert (early.expire, early.warnings, early.next_check_at) == (0, (), at(9, 10) - timedelta(14))
    warned = plan_expiry(INACTIVE_6, account, at(8, 30), HCM)
    assert [(w.points, w.expires_at) for w in warned.warnings] == [(110, at(9, 10))]
    assert warned.next_check_at == at(9, 10)
    due = plan_expiry(INACTIVE_6, account, at(9, 10), HCM)
    assert (due.expire, due.reason, due.expired_at) == (110, INACTIVITY, at(9, 10))
    assert due.entry_id == "expire:c-1:20260910T030000Z"


def test_an_order_moves_the_inactivity_deadline() -> None:
    account = account_of("c-1", balance=150, last_order_at=at(8, 20), lines=fifo_account())
    plan = plan_expiry(INACTIVE_6, account, at(9, 10), HCM)
    assert plan.expire == 0
    assert plan.next_check_at == at(2, 20, 2027) - timedelta(days=14)


def test_inactivity_without_orders_counts_from_the_first_points_and_restarts_after_expiry() -> None:
    signup = LedgerLine("earned", "signup", 50, None, None, at(1, 10))
    expired = LedgerLine("expired", INACTIVITY, -50, None, None, at(7, 10))
    review = LedgerLine("earned", "review", 20, None, None, at(12, 1))
    account = account_of("c-1", balance=50, last_order_at=None, lines=[signup])
    assert plan_expiry(INACTIVE_6, account, at(7, 10), HCM).expire == 50
    # Points earned after an inactivity expiry get their own six months.
    later = account_of("c-1", balance=20, last_order_at=None, lines=[signup, expired, review])
    assert later.last_activity == at(12, 1)
    assert plan_expiry(INACTIVE_6, later, at(5, 1, 2027), HCM).expire == 0
    assert plan_expiry(INACTIVE_6, later, at(6, 1, 2027), HCM).expire == 20


def test_never_expires_nothing() -> None:
    account = account_of("c-1", balance=150, last_order_at=None, lines=fifo_account())
    plan = plan_expiry(Expiry(mode="never"), account, at(1, 1, 2030), HCM)
    assert (plan.expire, plan.warnings, plan.next_check_at) == (0, (), NEVER)

"""Points for actions, worked examples: limit periods across boundaries and time zones, limits
granted in order, birthdays in several zones and 29 February."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.earn.domain.actions import (
    Claim,
    birthday_after,
    birthday_in,
    next_birthday_at,
    period_of,
    within_limits,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("per", "at", "zone", "period"),
    [
        # 17:00 UTC is midnight in Ho Chi Minh City: the next local day starts there.
        ("day", datetime(2026, 12, 1, 16, 59, 59, tzinfo=UTC), HCM, "day:2026-12-01"),
        ("day", datetime(2026, 12, 1, 17, 0, tzinfo=UTC), HCM, "day:2026-12-02"),
        ("day", datetime(2026, 12, 1, 17, 0, tzinfo=UTC), UTC, "day:2026-12-01"),
        # Sunday 6 December 23:30 local still belongs to the week of Monday 30 November.
        ("week", datetime(2026, 12, 6, 16, 30, tzinfo=UTC), HCM, "week:2026-11-30"),
        ("week", datetime(2026, 12, 6, 17, 0, tzinfo=UTC), HCM, "week:2026-12-07"),
        # New Year's Eve 19:00 UTC is already 1 January in Ho Chi Minh City, not in New York.
        ("month", datetime(2026, 12, 31, 19, 0, tzinfo=UTC), HCM, "month:2027-01"),
        ("month", datetime(2026, 12, 31, 19, 0, tzinfo=UTC), NEW_YORK, "month:2026-12"),
        ("year", datetime(2026, 12, 31, 19, 0, tzinfo=UTC), HCM, "year:2027"),
        ("year", datetime(2027, 1, 1, 4, 59, tzinfo=UTC), NEW_YORK, "year:2026"),
        ("lifetime", datetime(2026, 12, 31, 19, 0, tzinfo=UTC), HCM, "lifetime"),
    ],
)
def test_limit_periods_follow_the_local_calendar(
    per: str, at: datetime, zone: ZoneInfo, period: str
) -> None:
    assert period_of(per, at, zone) == period


def test_a_limit_grants_in_order_until_its_counter_is_full() -> None:
    week1 = ("review", "c-1", "week:2026-11-30")
    week2 = ("review", "c-1", "week:2026-12-07")
    other = ("review", "c-2", "week:2026-11-30")
    claims = [Claim(week1, 3), Claim(week1, 3), Claim(other, 3), Claim(week1, 3), Claim(week2, 3)]

    # c-1 had 1 review rewarded that week: two more fit, the third is refused; a new week and
    # another customer count on their own.
    assert within_limits(claims, {week1: 1}) == [True, True, True, False, True]


def test_a_full_counter_refuses_everything() -> None:
    key = ("newsletter", "c-1", "lifetime")
    assert within_limits([Claim(key, 1), Claim(key, 1)], {key: 1}) == [False, False]


@pytest.mark.parametrize(
    ("year", "celebrated"),
    [(2027, date(2027, 2, 28)), (2028, date(2028, 2, 29)), (2100, date(2100, 2, 28))],
)
def test_29_february_is_celebrated_on_the_28th_in_other_years(year: int, celebrated: date) -> None:
    assert birthday_in(year, date(1996, 2, 29)) == celebrated


def test_a_birthday_starts_at_local_midnight_in_the_customers_zone() -> None:
    birthday = date(1990, 3, 15)
    # Ho Chi Minh City: 15 March 00:00 +07:00 is 14 March 17:00 UTC.
    assert next_birthday_at(birthday, HCM, date(2026, 3, 1)) == datetime(
        2026, 3, 14, 17, 0, tzinfo=UTC
    )
    # New York is on daylight time (UTC-4) from 8 March 2026.
    assert next_birthday_at(birthday, NEW_YORK, date(2026, 3, 1)) == datetime(
        2026, 3, 15, 4, 0, tzinfo=UTC
    )
    # In winter the same zone is UTC-5.
    assert next_birthday_at(date(1990, 1, 20), NEW_YORK, date(2026, 1, 1)) == datetime(
        2026, 1, 20, 5, 0, tzinfo=UTC
    )


def test_the_birthday_of_today_is_still_to_come_and_yesterdays_is_next_year() -> None:
    birthday = date(1990, 3, 15)
    assert next_birthday_at(birthday, HCM, date(2026, 3, 15)).astimezone(HCM).date() == date(
        2026, 3, 15
    )
    assert next_birthday_at(birthday, HCM, date(2026, 3, 16)).astimezone(HCM).date() == date(
        2027, 3, 15
    )


def test_a_leap_day_birthday_falls_on_the_28th_then_the_29th() -> None:
    leap = date(2000, 2, 29)
    assert next_birthday_at(leap, ZoneInfo("UTC"), date(2027, 1, 1)) == datetime(
        2027, 2, 28, tzinfo=UTC
    )
    assert next_birthday_at(leap, ZoneInfo("UTC"), date(2027, 3, 1)) == datetime(
        2028, 2, 29, tzinfo=UTC
    )


def test_after_a_birthday_comes_next_years_unless_the_awarding_is_over_a_year_late() -> None:
    birthday = date(1990, 3, 15)
    celebrated = datetime(2026, 3, 14, 17, 0, tzinfo=UTC)
    on_time = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)
    assert birthday_after(birthday, HCM, celebrated, on_time) == datetime(
        2027, 3, 14, 17, 0, tzinfo=UTC
    )
    # Awarded only in May 2027: the 2027 birthday has passed too, so the next is 2028's.
    late = datetime(2027, 5, 1, tzinfo=UTC)
    assert birthday_after(birthday, HCM, celebrated, late) == datetime(
        2028, 3, 14, 17, 0, tzinfo=UTC
    )

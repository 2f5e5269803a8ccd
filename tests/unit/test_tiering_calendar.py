"""Local days, windows and period ends across year boundaries, DST and time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tiering_builders import local, programme

from services.tiering.domain.activity import Activity, keep_totals, next_drop, window_totals
from services.tiering.domain.calendar import (
    local_day,
    midnight,
    period_end,
    period_span,
    window_span,
)
from services.tiering.domain.rules import Window, WindowKind

ZONES = ["Asia/Ho_Chi_Minh", "America/New_York", "Pacific/Auckland", "America/Santiago", "UTC"]


@pytest.mark.parametrize(
    ("zone", "instant", "day"),
    [
        ("Asia/Ho_Chi_Minh", datetime(2026, 12, 31, 17, 0, tzinfo=UTC), date(2027, 1, 1)),
        ("Asia/Ho_Chi_Minh", datetime(2026, 12, 31, 16, 59, tzinfo=UTC), date(2026, 12, 31)),
        ("America/New_York", datetime(2027, 1, 1, 4, 59, tzinfo=UTC), date(2026, 12, 31)),
        ("Pacific/Auckland", datetime(2026, 12, 31, 11, 0, tzinfo=UTC), date(2027, 1, 1)),
    ],
)
def test_the_day_is_the_shops_local_day(zone: str, instant: datetime, day: date) -> None:
    assert local_day(instant, ZoneInfo(zone)) == day


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        # Clocks skip midnight: the day starts at 01:00 new time, one hour after 23:00 old time.
        ("America/Santiago", date(2022, 9, 11), datetime(2022, 9, 11, 4, 0, tzinfo=UTC)),
        ("America/New_York", date(2026, 3, 8), datetime(2026, 3, 8, 5, 0, tzinfo=UTC)),
        ("Asia/Ho_Chi_Minh", date(2027, 1, 1), datetime(2026, 12, 31, 17, 0, tzinfo=UTC)),
    ],
)
def test_midnight_is_the_first_instant_of_the_local_day(
    zone: str, day: date, expected: datetime
) -> None:
    assert midnight(day, ZoneInfo(zone)) == expected


@given(
    day=st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31)),
    zone=st.sampled_from(ZONES),
)
def test_midnight_belongs_to_its_day_and_the_instant_before_to_the_day_before(
    day: date, zone: str
) -> None:
    tz = ZoneInfo(zone)
    start = midnight(day, tz)
    assert local_day(start, tz) == day
    assert local_day(start - timedelta(microseconds=1), tz) == day - timedelta(days=1)


def test_rolling_window_counts_that_many_days_ending_today() -> None:
    span = window_span(Window(WindowKind.ROLLING, 365), date(2027, 1, 10))
    assert span == (date(2026, 1, 11), date(2027, 1, 10))


def test_calendar_window_starts_on_the_first_of_january() -> None:
    assert window_span(Window(WindowKind.CALENDAR_YEAR), date(2027, 1, 10)) == (
        date(2027, 1, 1),
        date(2027, 1, 10),
    )


def test_lifetime_window_has_no_start() -> None:
    assert window_span(Window(WindowKind.LIFETIME), date(2027, 1, 10)) == (None, date(2027, 1, 10))


@pytest.mark.parametrize("zone", ZONES)
def test_calendar_period_ends_at_the_next_local_new_year(zone: str) -> None:
    prog = programme(zone=zone, window={"kind": "calendar_year"})
    end = period_end(prog, local(zone, 2026, 12, 31, 23, 59))
    assert end == local(zone, 2027, 1, 1)
    assert end is not None
    assert period_span(prog, end) == (date(2026, 1, 1), date(2026, 12, 31))


def test_rolling_period_ends_whole_days_after_the_day_reached_across_a_leap_year() -> None:
    prog = programme(window={"kind": "rolling", "days": 365})
    end = period_end(prog, local("Asia/Ho_Chi_Minh", 2027, 3, 1, 18))
    assert end == local("Asia/Ho_Chi_Minh", 2028, 2, 29)
    assert end is not None
    assert period_span(prog, end) == (date(2027, 3, 1), date(2028, 2, 28))


def test_lifetime_has_no_period_end() -> None:
    prog = programme(window={"kind": "lifetime"}, downgrade={"mode": "never"})
    assert period_end(prog, local("UTC", 2026, 1, 1)) is None


def test_totals_count_only_the_days_in_the_window() -> None:
    prog = programme(window={"kind": "rolling", "days": 30})
    act = Activity(since=date(2026, 1, 1))
    act.add("VND", date(2026, 1, 1), Decimal(100))
    act.add("VND", date(2026, 1, 30), Decimal(50))

    assert window_totals(prog, act, local("Asia/Ho_Chi_Minh", 2026, 1, 30))["VND"] == 150
    assert window_totals(prog, act, local("Asia/Ho_Chi_Minh", 2026, 1, 31))["VND"] == 50


def test_lifetime_totals_include_what_was_summed_before_the_loaded_days() -> None:
    prog = programme(window={"kind": "lifetime"}, downgrade={"mode": "never"})
    act = Activity(since=date(2026, 1, 1), before={"VND": Decimal(700)})
    act.add("VND", date(2025, 6, 1), Decimal(100))
    act.add("VND", date(2026, 2, 1), Decimal(10))

    assert window_totals(prog, act, local("UTC", 2026, 3, 1))["VND"] == 810


def test_grace_check_in_a_calendar_year_still_counts_last_year() -> None:
    prog = programme(
        window={"kind": "calendar_year"}, downgrade={"mode": "grace", "grace_days": 30}
    )
    act = Activity(since=date(2025, 1, 1))
    act.add("VND", date(2026, 5, 1), Decimal(9))

    assert keep_totals(prog, act, local("Asia/Ho_Chi_Minh", 2027, 1, 2))["VND"] == 9
    assert keep_totals(prog, act, local("Asia/Ho_Chi_Minh", 2028, 1, 2))["VND"] == 0


def test_next_drop_is_the_morning_an_order_leaves_the_rolling_window() -> None:
    prog = programme(window={"kind": "rolling", "days": 30})
    act = Activity(since=date(2026, 1, 1))
    act.add("VND", date(2026, 1, 5), Decimal(1))
    act.add("VND", date(2026, 1, 9), Decimal(1))

    assert next_drop(prog, act, local("Asia/Ho_Chi_Minh", 2026, 1, 20)) == local(
        "Asia/Ho_Chi_Minh", 2026, 2, 4
    )
    assert next_drop(prog, act, local("Asia/Ho_Chi_Minh", 2026, 2, 4)) == local(
        "Asia/Ho_Chi_Minh", 2026, 2, 8
    )

"""Local days, qualification windows and period ends, in the shop's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.tiering.domain.rules import Programme, Window, WindowKind

DaySpan = tuple[date | None, date]
"""Inclusive local days [first, last]; first is None for 'since the beginning'."""


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The shop's calendar day at an instant."""
    return at.astimezone(zone).date()


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) a local day starts.

    Where clocks skip midnight (Santiago, Havana, Beirut), fold=0 reads 00:00 with the offset in
    force before the jump, which is exactly the day's first real instant (01:00 new time).
    """
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def window_span(window: Window, day: date) -> DaySpan:
    """The days the window counts on `day`: that day and the ones before it that still count."""
    if window.kind is WindowKind.ROLLING:
        return day - timedelta(days=window.days - 1), day
    if window.kind is WindowKind.CALENDAR_YEAR:
        return date(day.year, 1, 1), day
    return None, day


def period_end(programme: Programme, reached_at: datetime) -> datetime | None:
    """When a tier reached or kept at `reached_at` is next reviewed; None without periods.

    Rolling: `days` whole local days after the day it was reached. Calendar year: the first
    instant of the next local year. Lifetime: never.
    """
    window, zone = programme.window, programme.zone
    day = local_day(reached_at, zone)
    if window.kind is WindowKind.ROLLING:
        return midnight(day + timedelta(days=window.days), zone)
    if window.kind is WindowKind.CALENDAR_YEAR:
        return midnight(date(day.year + 1, 1, 1), zone)
    return None


def period_span(programme: Programme, review_at: datetime) -> DaySpan:
    """The days a review at `review_at` judges: the whole period that ended there."""
    window = programme.window
    last = local_day(review_at, programme.zone) - timedelta(days=1)
    if window.kind is WindowKind.ROLLING:
        return last - timedelta(days=window.days - 1), last
    if window.kind is WindowKind.CALENDAR_YEAR:
        return date(last.year, 1, 1), last
    return None, last


def previous_year_span(day: date) -> DaySpan:
    return date(day.year - 1, 1, 1), date(day.year - 1, 12, 31)


def earliest_day_needed(programme: Programme, at: datetime) -> date:
    """The first day whose own total a check at `at` or later can read.

    A lifetime window reads every earlier day too, but only as one sum (Activity.before).
    """
    window = programme.window
    day = local_day(at, programme.zone)
    if window.kind is WindowKind.ROLLING:
        return day - timedelta(days=window.days + 1)
    if window.kind is WindowKind.CALENDAR_YEAR:
        return date(day.year - 1, 1, 1)
    return day

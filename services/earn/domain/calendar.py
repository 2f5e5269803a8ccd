"""Month arithmetic for expiry dates and membership periods, in a given time zone."""

from __future__ import annotations

import calendar
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def add_months(at: datetime, months: int) -> datetime:
    """The same day and time `months` later; the 31st becomes the month's last day."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def end_of_period(at: datetime, period: str, zone: ZoneInfo) -> datetime:
    """The first instant after the local month or year that `at` falls in."""
    local = at.astimezone(zone)
    if period == "year":
        start = datetime(local.year + 1, 1, 1, tzinfo=zone)
    else:
        first = local.date().replace(day=1) + timedelta(days=32)
        start = datetime.combine(first.replace(day=1), time(0), tzinfo=zone)
    return start

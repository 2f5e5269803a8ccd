"""Points for actions: limit periods in the shop's time zone, birthdays in the customer's."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LIFETIME = "lifetime"


def period_of(per: str, at: datetime, zone: ZoneInfo) -> str:
    """The limit period that `at` falls in, named by its local start: 'day:2026-12-02',
    'week:2026-11-30' (ISO weeks start on Monday), 'month:2026-12', 'year:2026', 'lifetime'."""
    local = at.astimezone(zone).date()
    if per == "day":
        return f"day:{local.isoformat()}"
    if per == "week":
        return f"week:{(local - timedelta(days=local.weekday())).isoformat()}"
    if per == "month":
        return f"month:{local.year:04d}-{local.month:02d}"
    if per == "year":
        return f"year:{local.year:04d}"
    return LIFETIME


CounterKey = tuple[str, ...]  # (shop,) action, customer, period


@dataclass(frozen=True, slots=True)
class Claim:
    """One award asking for a place within its limit: `key` names the counter."""

    key: CounterKey
    limit: int


def within_limits(claims: Sequence[Claim], used: dict[CounterKey, int]) -> list[bool]:
    """Which claims are granted, in order: each counter grants until it reaches its limit.
    `used` is what each counter had granted before."""
    counts = dict(used)
    granted = []
    for claim in claims:
        count = counts.get(claim.key, 0)
        ok = count < claim.limit
        granted.append(ok)
        if ok:
            counts[claim.key] = count + 1
    return granted


def birthday_in(year: int, birthday: date) -> date:
    """The day a birthday is celebrated in `year`: 29 February is the 28th in other years."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def next_birthday_at(birthday: date, zone: ZoneInfo, on_or_after: date) -> datetime:
    """The start (local midnight, as an instant) of the first birthday on or after a local
    date, in the customer's time zone."""
    day = birthday_in(on_or_after.year, birthday)
    if day < on_or_after:
        day = birthday_in(on_or_after.year + 1, birthday)
    return _local_midnight(day, zone)


def birthday_after(birthday: date, zone: ZoneInfo, celebrated: datetime, now: datetime) -> datetime:
    """The next birthday to award once the one starting at `celebrated` is done: next year's,
    or, when the awarding runs late by more than a year, the first one from today on."""
    year = celebrated.astimezone(zone).year + 1
    today = now.astimezone(zone).date()
    return next_birthday_at(birthday, zone, max(date(year, 1, 1), today))


def local_year(at: datetime, zone: ZoneInfo) -> int:
    return at.astimezone(zone).year


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # Where clocks skip midnight (a DST change at 00:00), this instant is when the day begins.
    return datetime.combine(day, time(0), tzinfo=zone)

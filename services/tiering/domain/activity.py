"""A customer's qualifying amounts by unit and local day, and the totals windows take of them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from services.tiering.domain.calendar import (
    DaySpan,
    local_day,
    midnight,
    period_span,
    previous_year_span,
    window_span,
)
from services.tiering.domain.rules import Programme, WindowKind

Totals = Mapping[str, Decimal]
ZERO = Decimal(0)


@dataclass
class Activity:
    """Net qualifying amounts per unit and day from `since` on, plus one sum of the days before.

    Loaded for the days the checks can read (see calendar.earliest_day_needed); amounts added to
    days before `since` only move `before`, which only a lifetime window reads.
    """

    since: date | None = None
    before: dict[str, Decimal] = field(default_factory=dict)
    days: dict[str, dict[date, Decimal]] = field(default_factory=dict)

    def add(self, unit: str, day: date, amount: Decimal) -> None:
        if self.since is not None and day < self.since:
            self.before[unit] = self.before.get(unit, ZERO) + amount
            return
        by_day = self.days.setdefault(unit, {})
        by_day[day] = by_day.get(day, ZERO) + amount

    def total(self, unit: str, span: DaySpan, *, through: date | None = None) -> Decimal:
        """Sum over the inclusive span; `through` cuts off later days (what was known then)."""
        first, last = span
        if through is not None:
            last = min(last, through)
        total = self.before.get(unit, ZERO) if first is None else ZERO
        for day, amount in self.days.get(unit, {}).items():
            if (first is None or day >= first) and day <= last:
                total += amount
        return total

    def positive_days(self) -> Iterator[date]:
        for by_day in self.days.values():
            yield from (day for day, amount in by_day.items() if amount > 0)


def window_totals(programme: Programme, activity: Activity, at: datetime) -> dict[str, Decimal]:
    """What the window counts at `at`, per unit: the amount that upgrades."""
    span = window_span(programme.window, local_day(at, programme.zone))
    return {unit: activity.total(unit, span) for unit in programme.units}


def period_totals(
    programme: Programme, activity: Activity, review_at: datetime, *, through: date | None = None
) -> dict[str, Decimal]:
    """What a review at `review_at` judges: the period that ended there."""
    span = period_span(programme, review_at)
    return {unit: activity.total(unit, span, through=through) for unit in programme.units}


def keep_totals(programme: Programme, activity: Activity, at: datetime) -> dict[str, Decimal]:
    """What a continuous (grace) check compares with the keep thresholds at `at`.

    With a calendar-year window the last complete year still counts until the new year's total
    passes it, so a tier is never at risk merely because 1 January came.
    """
    current = window_totals(programme, activity, at)
    if programme.window.kind is not WindowKind.CALENDAR_YEAR:
        return current
    last_year = previous_year_span(local_day(at, programme.zone))
    return {unit: max(current[unit], activity.total(unit, last_year)) for unit in current}


def next_drop(programme: Programme, activity: Activity, after: datetime) -> datetime | None:
    """The first instant after `after` at which the window may count less (roll-off)."""
    zone, window = programme.zone, programme.window
    if window.kind is WindowKind.LIFETIME:
        return None
    today = local_day(after, zone)
    if window.kind is WindowKind.CALENDAR_YEAR:
        return midnight(date(today.year + 1, 1, 1), zone)
    days = timedelta(days=window.days)
    leaving = [day + days for day in activity.positive_days() if day + days > today]
    return midnight(min(leaving), zone) if leaving else None

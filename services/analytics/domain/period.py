"""The period a report covers: local dates in a zone, their instants, and its months."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo


def month_after(day: date) -> date:
    """The first day of the month after the one `day` is in."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Period:
    """From the start of `start` up to, not including, the start of `end` (local days)."""

    start: date
    end: date
    time_zone: str

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("the period must end after it starts")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def instant(self, day: date) -> datetime:
        """Midnight at the start of a local day."""
        return datetime.combine(day, time(0), tzinfo=ZoneInfo(self.time_zone))

    @property
    def starts_at(self) -> datetime:
        return self.instant(self.start)

    @property
    def ends_at(self) -> datetime:
        return self.instant(self.end)

    def months(self) -> list[date]:
        """First days of the months the period touches, in order."""
        months, month = [], self.start.replace(day=1)
        while month < self.end:
            months.append(month)
            month = month_after(month)
        return months

    def month_ends(self) -> list[datetime]:
        """The end of each month of the period, the last one cut at the period's end."""
        return [min(self.instant(month_after(m)), self.ends_at) for m in self.months()]


def months_between(first: date, later: date) -> int:
    return (later.year - first.year) * 12 + later.month - first.month

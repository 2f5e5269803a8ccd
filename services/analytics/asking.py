"""What a report may be asked for, checked alike for the HTTP API and the CLI: a period of
days in range, a known currency and attribution window, and a shop and tier the facts know."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from services.analytics.adapters.segments import known_shop, known_tier
from services.analytics.building import cohort_month
from services.analytics.report import Segment
from shared.api_inputs import EARLIEST_DAY, LATEST_DAY, OUT_OF_RANGE
from shared.db import Connection
from shared.events import CURRENCY_MINOR_UNITS

MAX_ATTRIBUTION_DAYS: Final = 365


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the parameter named `parameter` (from, to, currency...) makes no report."""

    parameter: str
    message: str


def refusals(
    start: date,
    end: date,
    *,
    cohort: str | None = None,
    currency: str,
    attribution_days: int | None,
) -> list[Refusal]:
    """What is wrong with these parameters, in the order they are given; empty if nothing."""
    found = [
        Refusal(name, OUT_OF_RANGE)
        for name, day in (("from", start), ("to", end))
        if not EARLIEST_DAY <= day <= LATEST_DAY
    ]
    if not found and end <= start:
        found.append(Refusal("to", "must be later than from"))
    if cohort is not None and not _month_in_range(cohort):
        found.append(Refusal("cohort", "not a month (YYYY-MM) from 1970-01 to 2999-12"))
    if currency not in CURRENCY_MINOR_UNITS:
        found.append(
            Refusal("currency", f"unknown currency {currency!r}: not an active ISO 4217 code")
        )
    if attribution_days is not None and not 1 <= attribution_days <= MAX_ATTRIBUTION_DAYS:
        found.append(Refusal("attribution_days", f"must be from 1 to {MAX_ATTRIBUTION_DAYS}"))
    return found


def _month_in_range(text: str) -> bool:
    try:
        first = cohort_month(text)
    except ValueError:
        return False
    return EARLIEST_DAY <= first < LATEST_DAY


async def unknown_in(conn: Connection, schema: str, segment: Segment) -> list[Refusal]:
    """The segment's shop and tier that no fact names: a report of them would be all zeros."""
    found = []
    if segment.shop is not None and not await known_shop(conn, schema, segment.shop):
        found.append(Refusal("shop", f"unknown shop {segment.shop!r}: no customer or order"))
    tier = segment.tier
    if tier not in (None, "none") and not await known_tier(conn, schema, tier, segment.shop):
        whose = "no customer" if segment.shop is None else "no customer of the shop"
        found.append(Refusal("tier", f"unknown tier {tier!r}: {whose} has had it ('none': none)"))
    return found

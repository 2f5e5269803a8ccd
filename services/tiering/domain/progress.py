"""How far a customer is from the next tier, and what keeps the current one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from services.tiering.domain.activity import (
    ZERO,
    Activity,
    Totals,
    keep_totals,
    period_totals,
    window_totals,
)
from services.tiering.domain.calendar import local_day, period_end
from services.tiering.domain.ladder import next_up, thresholds
from services.tiering.domain.rules import DowngradeMode, Programme, WindowKind
from services.tiering.domain.state import TierState


@dataclass(frozen=True, slots=True)
class Target:
    """A tier and, per unit, how much more reaches its threshold (any one unit suffices)."""

    tier: str
    needed: dict[str, Decimal]
    deadline: datetime | None


@dataclass(frozen=True, slots=True)
class Progress:
    totals: dict[str, Decimal]
    next: Target | None
    keep: Target | None


def progress(programme: Programme, state: TierState, activity: Activity, now: datetime) -> Progress:
    """`next`: to the tier above the earned one. Its deadline is when the calendar year's total
    starts again (rolling and lifetime windows have none). `keep`: what must still count by
    the review (end of period) or the end of a running grace period."""
    totals = window_totals(programme, activity, now)
    earned = programme.tier(state.earned)
    above = next_up(programme, earned)
    target = None
    if above is not None:
        calendar = programme.window.kind is WindowKind.CALENDAR_YEAR
        deadline = period_end(programme, now) if calendar else None
        target = Target(above.code, _needed(totals, thresholds(above, "enter")), deadline)
    return Progress(totals, target, _keep(programme, state, activity, now))


def _keep(
    programme: Programme, state: TierState, activity: Activity, now: datetime
) -> Target | None:
    earned = programme.tier(state.earned)
    if earned.rank == 0:
        return None
    keep = thresholds(earned, "keep")
    mode = programme.downgrade.mode
    if mode is DowngradeMode.END_OF_PERIOD and state.review_at is not None:
        today = local_day(now, programme.zone)
        counted = period_totals(programme, activity, state.review_at, through=today)
        return Target(earned.code, _needed(counted, keep), state.review_at)
    if mode is DowngradeMode.GRACE:
        deadline = None
        if state.below_since is not None:
            deadline = state.below_since + timedelta(days=programme.downgrade.grace_days)
        return Target(earned.code, _needed(keep_totals(programme, activity, now), keep), deadline)
    return None


def _needed(totals: Totals, target: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {unit: max(amount - totals.get(unit, ZERO), ZERO) for unit, amount in target.items()}

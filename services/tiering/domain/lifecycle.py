"""How a customer's tier moves: upgrades on activity; reviews, grace and floors as time passes.

Everything is a function of the state, the activity, the floors and an instant, so processing
the same events in the same order gives the same tiers however the work is batched or
scheduled: events catch the state up to their own time before they apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from services.tiering.domain.activity import (
    Activity,
    Totals,
    keep_totals,
    next_drop,
    period_totals,
    window_totals,
)
from services.tiering.domain.calendar import local_day, period_end
from services.tiering.domain.in_force import settle
from services.tiering.domain.ladder import (
    downgraded,
    meets,
    reached,
    shortfall,
    thresholds,
)
from services.tiering.domain.rules import DowngradeMode, Programme
from services.tiering.domain.state import AtRisk, Floor, TierChange, TierState


@dataclass
class Outcome:
    """The state after a step, and what it produced on the way."""

    state: TierState
    changes: list[TierChange] = field(default_factory=list)
    warnings: list[AtRisk] = field(default_factory=list)

    def extend(self, other: Outcome) -> Outcome:
        return Outcome(other.state, self.changes + other.changes, self.warnings + other.warnings)


def advance(
    programme: Programme,
    state: TierState,
    activity: Activity,
    floors: Sequence[Floor],
    until: datetime,
) -> Outcome:
    """Apply, in time order, everything due up to `until`: reviews, grace ends, roll-off,
    warnings, floors starting or ending. Time never runs backwards for a customer: an `until`
    before what was already evaluated changes nothing."""
    until = _not_before(state, until)
    out = Outcome(state)
    cursor = state.evaluated_until or until
    while (due := _next_due(programme, out.state, activity, floors, cursor)) is not None:
        if due > until:
            break
        _apply_instant(programme, out, activity, floors, due)
        cursor = max(cursor, due)
    _settle(programme, out, floors, until, window_totals(programme, activity, until), reason=None)
    out.state = _evaluated(out.state, until)
    return out


def record_activity(
    programme: Programme,
    state: TierState,
    activity: Activity,
    floors: Sequence[Floor],
    at: datetime,
    *,
    added: bool,
) -> Outcome:
    """After an event's amounts are in `activity`: upgrade at once, start or end a grace period,
    warn when a review is near and the keep threshold is out of reach so far.

    An event older than what was already evaluated counts as of that later instant.
    """
    at = _not_before(state, at)
    out = Outcome(state)
    totals = window_totals(programme, activity, at)
    earned = programme.tier(state.earned)
    reason = None
    if added:
        target = reached(programme, totals, "enter", up_to=None)
        if target.rank > earned.rank:
            out.state = _earn(programme, out.state, target.code, at)
            reason = "qualified"
    _check_grace(programme, out, activity, at)
    warn_from, review_at = _warning_at(programme, out.state), out.state.review_at
    if warn_from is not None and review_at is not None and at >= warn_from:
        today = local_day(at, programme.zone)
        _warn_for_review(programme, out, activity, review_at, through=today)
    _settle(programme, out, floors, at, totals, reason=reason)
    out.state = _evaluated(out.state, at)
    return out


def next_due(
    programme: Programme, state: TierState, activity: Activity, floors: Sequence[Floor]
) -> datetime | None:
    """When the scheduled evaluation next has something to do for this customer."""
    if state.evaluated_until is None:
        return None
    return _next_due(programme, state, activity, floors, state.evaluated_until)


# Instants: reviews and grace ends are due as soon as they are not after `until` (the state
# remembers them until applied); the others are due once, when time passes them.


def _next_due(
    programme: Programme,
    state: TierState,
    activity: Activity,
    floors: Sequence[Floor],
    cursor: datetime,
) -> datetime | None:
    pending: list[datetime] = []
    if state.review_at is not None:
        pending.append(state.review_at)
    grace_end = _grace_end(programme, state)
    if grace_end is not None:
        pending.append(grace_end)
    passing = [_warning_at(programme, state), _roll_off(programme, state, activity, cursor)]
    passing += [f.starts_at for f in floors] + [f.ends_at for f in floors]
    pending += [at for at in passing if at is not None and at > cursor]
    return min(pending, default=None)


def _apply_instant(
    programme: Programme,
    out: Outcome,
    activity: Activity,
    floors: Sequence[Floor],
    at: datetime,
) -> None:
    totals: Totals = window_totals(programme, activity, at)
    reason = None
    state = out.state
    if state.review_at is not None and state.review_at <= at:
        totals = period_totals(programme, activity, state.review_at)
        reason = _review(programme, out, totals, state.review_at)
    elif (grace_end := _grace_end(programme, state)) is not None and grace_end <= at:
        totals = keep_totals(programme, activity, grace_end)
        reason = _end_grace(programme, out, activity, totals, grace_end)
    else:
        _check_grace(programme, out, activity, at)
        if _warning_at(programme, out.state) == at and out.state.review_at is not None:
            through = local_day(at, programme.zone) - timedelta(days=1)
            _warn_for_review(programme, out, activity, out.state.review_at, through=through)
    _settle(programme, out, floors, at, totals, reason=reason)


def _review(programme: Programme, out: Outcome, totals: Totals, review_at: datetime) -> str | None:
    earned = programme.tier(out.state.earned)
    if meets(earned, totals, "keep"):
        out.state = replace(out.state, review_at=period_end(programme, review_at))
        return None
    out.state = _earn(programme, out.state, downgraded(programme, earned, totals).code, review_at)
    return "period_review"


def _end_grace(
    programme: Programme, out: Outcome, activity: Activity, totals: Totals, grace_end: datetime
) -> str | None:
    earned = programme.tier(out.state.earned)
    if meets(earned, totals, "keep"):
        out.state = replace(out.state, below_since=None)
        return None
    out.state = _earn(programme, out.state, downgraded(programme, earned, totals).code, grace_end)
    _check_grace(programme, out, activity, grace_end)
    return "grace_expired"


def _earn(programme: Programme, state: TierState, code: str, at: datetime) -> TierState:
    """The earned tier becomes `code` at `at`, with a fresh period where periods apply."""
    reviewed = programme.downgrade.mode is DowngradeMode.END_OF_PERIOD
    above_entry = programme.tier(code).rank > 0
    review_at = period_end(programme, at) if reviewed and above_entry else None
    return replace(state, earned=code, earned_at=at, review_at=review_at, below_since=None)


def _check_grace(programme: Programme, out: Outcome, activity: Activity, at: datetime) -> None:
    """In grace mode, start the grace period when the keep threshold is missed, end it when met."""
    state = out.state
    earned = programme.tier(state.earned)
    if programme.downgrade.mode is not DowngradeMode.GRACE or earned.rank == 0:
        return
    totals = keep_totals(programme, activity, at)
    if meets(earned, totals, "keep"):
        if state.below_since is not None:
            out.state = replace(state, below_since=None)
        return
    if state.below_since is not None:
        return
    deadline = at + timedelta(days=programme.downgrade.grace_days)
    unit, needed = shortfall(programme, totals, thresholds(earned, "keep"))
    out.state = replace(state, below_since=at, warned_deadline=deadline)
    out.warnings.append(
        AtRisk(state.shop_id, state.customer_id, earned.code, needed, unit, deadline)
    )


def _warn_for_review(
    programme: Programme, out: Outcome, activity: Activity, review_at: datetime, *, through: date
) -> None:
    """Warn once per review when what already counts for it is below the keep threshold."""
    state = out.state
    if state.warned_deadline == review_at:
        return
    earned = programme.tier(state.earned)
    projected = period_totals(programme, activity, review_at, through=through)
    if meets(earned, projected, "keep"):
        return
    unit, needed = shortfall(programme, projected, thresholds(earned, "keep"))
    out.state = replace(state, warned_deadline=review_at)
    out.warnings.append(
        AtRisk(state.shop_id, state.customer_id, earned.code, needed, unit, review_at)
    )


def _warning_at(programme: Programme, state: TierState) -> datetime | None:
    if (
        programme.downgrade.mode is not DowngradeMode.END_OF_PERIOD
        or programme.warn_days <= 0
        or state.review_at is None
        or state.warned_deadline == state.review_at
    ):
        return None
    return state.review_at - timedelta(days=programme.warn_days)


def _grace_end(programme: Programme, state: TierState) -> datetime | None:
    if programme.downgrade.mode is not DowngradeMode.GRACE or state.below_since is None:
        return None
    return state.below_since + timedelta(days=programme.downgrade.grace_days)


def _roll_off(
    programme: Programme, state: TierState, activity: Activity, cursor: datetime
) -> datetime | None:
    grace = programme.downgrade.mode is DowngradeMode.GRACE
    if not grace or state.below_since is not None or programme.tier(state.earned).rank == 0:
        return None
    return next_drop(programme, activity, cursor)


def _settle(
    programme: Programme,
    out: Outcome,
    floors: Sequence[Floor],
    at: datetime,
    totals: Totals,
    *,
    reason: str | None,
) -> None:
    out.state, change = settle(programme, out.state, floors, at, totals, reason=reason)
    if change is not None:
        out.changes.append(change)


def _not_before(state: TierState, at: datetime) -> datetime:
    until = state.evaluated_until
    return at if until is None or at > until else until


def _evaluated(state: TierState, at: datetime) -> TierState:
    until = state.evaluated_until
    return replace(state, evaluated_until=at if until is None or at > until else until)

"""The tier in force: the higher of the earned tier and every floor, and publishing its moves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from services.tiering.domain.activity import Totals
from services.tiering.domain.ladder import reported_amount
from services.tiering.domain.rules import Programme
from services.tiering.domain.state import Floor, TierChange, TierState


def effective_tier(programme: Programme, earned: str, floors: Sequence[Floor], at: datetime) -> str:
    """The higher of the earned tier and every floor in force at `at`."""
    best = programme.tier(earned)
    for floor in floors:
        if floor.active(at) and programme.knows(floor.tier):
            candidate = programme.tier(floor.tier)
            if candidate.rank > best.rank:
                best = candidate
    return best.code


def settle(
    programme: Programme,
    state: TierState,
    floors: Sequence[Floor],
    at: datetime,
    totals: Totals,
    *,
    reason: str | None,
) -> tuple[TierState, TierChange | None]:
    """The change to publish when the tier in force differs from the one last published.

    `reason` is why the earned tier moved at `at`, if it did; otherwise the reason is the floor
    that starts or ends. `totals` give the qualifying amount the change reports.
    """
    now_in_force = effective_tier(programme, state.earned, floors, at)
    if now_in_force == state.tier:
        return state, None
    before, after = programme.tier(state.tier), programme.tier(now_in_force)
    up = after.rank > before.rank
    unit, amount = reported_amount(programme, totals, after if up else before)
    change = TierChange(
        shop_id=state.shop_id,
        customer_id=state.customer_id,
        from_tier=before.code,
        to_tier=after.code,
        direction="up" if up else "down",
        reason=_reason(state, floors, at, now_in_force, reason),
        effective_at=at,
        unit=unit,
        amount=amount,
    )
    return replace(state, tier=now_in_force, tier_since=at), change


def _reason(
    state: TierState, floors: Sequence[Floor], at: datetime, now_in_force: str, earned: str | None
) -> str:
    if earned is not None and now_in_force == state.earned:
        return earned
    granting = [f for f in floors if f.active(at) and f.tier == now_in_force]
    if granting and now_in_force != state.earned:
        return granting[0].kind.value
    ended = [f for f in floors if f.ends_at <= at and f.tier == state.tier]
    if ended:
        return f"{ended[0].kind.value}_ended"
    return earned or "reevaluated"

"""Which rung qualifying totals reach, and the steps down."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

from services.tiering.domain.activity import ZERO, Totals
from services.tiering.domain.rules import Programme, Steps, Tier

Threshold = Literal["enter", "keep"]


def thresholds(tier: Tier, which: Threshold) -> Mapping[str, Decimal]:
    """A tier's thresholds; keep falls back to enter unit by unit."""
    if which == "enter":
        return tier.enter
    return {unit: tier.keep.get(unit, amount) for unit, amount in tier.enter.items()}


def meets(tier: Tier, totals: Totals, which: Threshold) -> bool:
    """The entry tier is always met; others when any one unit reaches its threshold."""
    if not tier.qualifies:
        return tier.rank == 0
    return any(totals.get(unit, ZERO) >= amount for unit, amount in thresholds(tier, which).items())


def reached(programme: Programme, totals: Totals, which: Threshold, *, up_to: int | None) -> Tier:
    """The highest ladder tier (at most rank `up_to`) whose threshold the totals meet."""
    best = programme.entry
    for tier in programme.ladder:
        if (up_to is None or tier.rank <= up_to) and meets(tier, totals, which):
            best = tier
    return best


def step_down(programme: Programme, tier: Tier) -> Tier:
    below = [t for t in programme.ladder if t.rank < tier.rank]
    return below[-1] if below else programme.entry


def downgraded(programme: Programme, tier: Tier, totals: Totals) -> Tier:
    """Where a tier whose keep threshold was missed lands, by the programme's steps rule."""
    if programme.downgrade.steps is Steps.ONE:
        return step_down(programme, tier)
    return reached(programme, totals, "keep", up_to=tier.rank - 1)


def next_up(programme: Programme, tier: Tier) -> Tier | None:
    above = [t for t in programme.ladder if t.rank > tier.rank]
    return above[0] if above else None


def closest_unit(programme: Programme, totals: Totals, target: Mapping[str, Decimal]) -> str:
    """The unit that is furthest along towards `target`: the one a customer is told about."""
    units = [u for u in programme.units if target.get(u, ZERO) > 0]
    if not units:
        return programme.units[0]
    return max(units, key=lambda u: (totals.get(u, ZERO) / target[u], -units.index(u)))


def reported_amount(programme: Programme, totals: Totals, tier: Tier) -> tuple[str, Decimal]:
    """The unit and amount a change to or from `tier` reports as the qualifying amount."""
    reference = tier if tier.qualifies else next_up(programme, tier)
    target = thresholds(reference, "enter") if reference is not None else {}
    unit = closest_unit(programme, totals, target)
    return unit, max(totals.get(unit, ZERO), ZERO)


def shortfall(
    programme: Programme, totals: Totals, target: Mapping[str, Decimal]
) -> tuple[str, Decimal]:
    """How much more, in the closest unit, reaches `target`; zero when one unit already does."""
    unit = closest_unit(programme, totals, target)
    return unit, max(target.get(unit, ZERO) - totals.get(unit, ZERO), ZERO)

"""One movement counted for its customer: caught up to its time, totals moved, rules applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.tiering.domain.activity import Activity
from services.tiering.domain.contributions import ContributionBook, Delta, Movement, Refused
from services.tiering.domain.lifecycle import Outcome, advance, record_activity
from services.tiering.domain.rules import Programme
from services.tiering.domain.state import Floor


@dataclass(frozen=True, slots=True)
class Customer:
    """What the rules read of one customer besides its state; `activity` moves in place."""

    activity: Activity
    floors: Sequence[Floor]


def count_movement(
    programme: Programme,
    book: ContributionBook,
    customer: Customer,
    outcome: Outcome,
    movement: Movement,
    *,
    now: datetime,
) -> tuple[Outcome, Refused | None]:
    """`outcome` extended by `movement` applied as of its time (never later than `now`), and
    the refusal when the movement contradicts its source.

    The result is the one event-time order gives, whichever came first of a source and its
    refunds: a refund waiting for its order leaves the customer's time where it is; the order
    then counts net of the refunds dated before it, and the later ones follow at their times.
    """
    if book.parks(movement):
        book.apply(movement)
        return outcome, None
    at = min(movement.at, now)
    out = outcome.extend(advance(programme, outcome.state, customer.activity, customer.floors, at))
    deltas = book.apply(movement)
    if isinstance(deltas, Refused):
        return out, deltas
    out = _count(programme, customer, out, deltas, at)
    for released in book.take_following():
        later = min(released.movement.at, now)
        out = out.extend(advance(programme, out.state, customer.activity, customer.floors, later))
        out = _count(programme, customer, out, released.deltas, later)
    return out, None


def _count(
    programme: Programme, customer: Customer, out: Outcome, deltas: list[Delta], at: datetime
) -> Outcome:
    if not deltas:
        return out
    for delta in deltas:
        customer.activity.add(delta.unit, delta.day, delta.amount)
    added = any(d.amount > 0 for d in deltas)
    step = record_activity(
        programme, out.state, customer.activity, customer.floors, at, added=added
    )
    return out.extend(step)

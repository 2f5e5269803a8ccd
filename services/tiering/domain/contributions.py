"""What each order (or points source) adds to the qualifying totals, net of what was taken back.

Every source keeps its own contribution, so a cancellation after a partial refund removes
exactly what is left, and nothing can take a source below zero. Refunds and cancellations of a
source not seen yet are parked; when it arrives, those dated before it apply with it and the
others follow it, each at its own time, in event-time order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)


class MovementKind(StrEnum):
    ADD = "add"  # order.paid: the source's one contribution; a repeat is ignored
    ADD_MORE = "add_more"  # points.earned: adds to whatever the source already gave
    REMOVE = "remove"  # order.refunded, points.reversed: up to what is left
    CLOSE = "close"  # order.cancelled: everything left, and nothing more afterwards


@dataclass(frozen=True, slots=True)
class Movement:
    """One input event's effect on one source. `amount` None on REMOVE means all that is left."""

    event_id: str
    shop_id: str
    customer_id: str
    key: str
    kind: MovementKind
    unit: str | None
    amount: Decimal | None
    day: date | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Contribution:
    """A source's part of the totals, counted on the local day it was paid or earned."""

    shop_id: str
    customer_id: str
    key: str
    unit: str
    day: date
    added: Decimal
    removed: Decimal = ZERO
    closed: bool = False

    @property
    def net(self) -> Decimal:
        return self.added - self.removed


@dataclass(frozen=True, slots=True)
class Delta:
    """A change of one customer's total in one unit on one day."""

    customer_id: str
    unit: str
    day: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Released:
    """A parked movement applied after its source arrived, to count at its own time."""

    movement: Movement
    deltas: list[Delta]


@dataclass(frozen=True, slots=True)
class Refused:
    """A movement that can never apply as sent (it goes to the dead-letter queue)."""

    movement: Movement
    reason: str


# (shop, customer, source): one customer id at two shops has two sets of sources.
SourceKey = tuple[str, str, str]


@dataclass
class ContributionBook:
    """The contributions and parked movements of the sources a batch touches."""

    contributions: dict[SourceKey, Contribution] = field(default_factory=dict)
    parked: dict[SourceKey, list[Movement]] = field(default_factory=dict)
    changed: set[SourceKey] = field(default_factory=set)
    released: list[Movement] = field(default_factory=list)
    dropped: list[Refused] = field(default_factory=list)
    loaded_parked: set[str] = field(default_factory=set)
    following: list[Released] = field(default_factory=list)

    @classmethod
    def of(
        cls, contributions: Iterable[Contribution], parked: Iterable[Movement]
    ) -> ContributionBook:
        book = cls({(c.shop_id, c.customer_id, c.key): c for c in contributions})
        for movement in parked:
            book.parked.setdefault(
                (movement.shop_id, movement.customer_id, movement.key), []
            ).append(movement)
            book.loaded_parked.add(movement.event_id)
        return book

    def apply(self, movement: Movement) -> list[Delta] | Refused:
        """The day totals that move; Refused when the movement contradicts its source.

        An addition brings in the parked movements of its source dated before it; those dated at
        or after it wait in `following` (see take_following), already applied to the source.
        """
        key = (movement.shop_id, movement.customer_id, movement.key)
        current = self.contributions.get(key)
        if movement.kind in (MovementKind.ADD, MovementKind.ADD_MORE):
            deltas = self._add(key, current, movement)
            for released in self._release(key):
                if released.movement.at < movement.at:
                    deltas += released.deltas
                else:
                    self.following.append(released)
            return deltas
        if current is None:
            self.parked.setdefault(key, []).append(movement)
            return []
        return self._take_back(key, movement)

    def parks(self, movement: Movement) -> bool:
        """Whether `movement` takes back from a source not seen yet, and so waits for it."""
        adds = movement.kind in (MovementKind.ADD, MovementKind.ADD_MORE)
        return (
            not adds
            and (movement.shop_id, movement.customer_id, movement.key) not in self.contributions
        )

    def take_following(self) -> list[Released]:
        """The parked movements the last addition released to count after it, in time order."""
        following, self.following = self.following, []
        return following

    @property
    def newly_parked(self) -> list[Movement]:
        """Parked by this batch and still waiting (to be stored)."""
        return [
            m for ms in self.parked.values() for m in ms if m.event_id not in self.loaded_parked
        ]

    @property
    def released_stored(self) -> list[str]:
        """Event ids of stored parked movements applied now (to be deleted)."""
        return [m.event_id for m in self.released if m.event_id in self.loaded_parked]

    def _release(self, key: SourceKey) -> list[Released]:
        if key not in self.contributions:
            return []  # the addition did not count: they go on waiting
        released = []
        for parked in sorted(self.parked.pop(key, []), key=lambda m: m.at):
            self.released.append(parked)
            outcome = self._take_back(key, parked)
            if isinstance(outcome, Refused):
                self.dropped.append(outcome)
            else:
                released.append(Released(parked, outcome))
        return released

    def _add(self, key: SourceKey, current: Contribution | None, movement: Movement) -> list[Delta]:
        amount, unit, day = movement.amount, movement.unit, movement.day
        if amount is None or unit is None or day is None or amount <= 0:
            return []
        if current is None:
            current = Contribution(
                movement.shop_id, movement.customer_id, movement.key, unit, day, ZERO
            )
        elif movement.kind is MovementKind.ADD or current.closed or current.unit != unit:
            return []  # paid twice, or more after a cancellation: counted once, as first paid
        self._store(key, replace(current, added=current.added + amount))
        return [Delta(current.customer_id, unit, current.day, amount)]

    def _take_back(self, key: SourceKey, movement: Movement) -> list[Delta] | Refused:
        current = self.contributions[key]
        if movement.unit is not None and movement.unit != current.unit:
            return Refused(movement, f"refund in {movement.unit} of a source in {current.unit}")
        if movement.kind is MovementKind.CLOSE:
            taken = current.net
            updated = replace(current, removed=current.added, closed=True)
        else:
            wanted = current.net if movement.amount is None else movement.amount
            taken = min(wanted, current.net)
            updated = replace(current, removed=current.removed + taken)
        if updated == current:
            return []
        self._store(key, updated)
        return [Delta(current.customer_id, current.unit, current.day, -taken)] if taken else []

    def _store(self, key: SourceKey, contribution: Contribution) -> None:
        self.contributions[key] = contribution
        self.changed.add(key)

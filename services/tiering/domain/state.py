"""A customer's tier state, the floors under it, and what changes of it produce."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from services.tiering.domain.rules import Programme

# (shop_id, customer_id): whose tier it is. One customer id at two shops is two members.
Member = tuple[str, str]


class FloorKind(StrEnum):
    MANUAL = "manual"
    MEMBERSHIP = "membership"


@dataclass(frozen=True, slots=True)
class Floor:
    """A tier the customer holds at least from `starts_at` until (not including) `ends_at`."""

    kind: FloorKind
    ref: str
    tier: str
    starts_at: datetime
    ends_at: datetime
    reason: str

    def active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True, slots=True)
class TierState:
    """What the rules remember of one customer.

    `earned` is the tier qualification gives; `tier` the one in force (the higher of earned and
    any active floor), which is what is published. `evaluated_until`: everything due up to this
    instant has been applied.
    """

    shop_id: str
    customer_id: str
    earned: str
    earned_at: datetime | None
    review_at: datetime | None
    below_since: datetime | None
    tier: str
    tier_since: datetime | None
    evaluated_until: datetime | None
    warned_deadline: datetime | None

    @property
    def member(self) -> Member:
        return (self.shop_id, self.customer_id)

    @classmethod
    def new(cls, shop_id: str, customer_id: str, programme: Programme) -> TierState:
        entry = programme.entry.code
        return cls(shop_id, customer_id, entry, None, None, None, entry, None, None, None)


@dataclass(frozen=True, slots=True)
class TierChange:
    """The tier in force moved; `amount` in `unit` is the qualifying total it reports."""

    shop_id: str
    customer_id: str
    from_tier: str
    to_tier: str
    direction: Literal["up", "down"]
    reason: str
    effective_at: datetime
    unit: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class AtRisk:
    """Unless `needed` more (in `unit`) counts by `deadline`, the customer drops from `tier`."""

    shop_id: str
    customer_id: str
    tier: str
    needed: Decimal
    unit: str
    deadline: datetime

"""The tier programme as the domain sees it: the ladder, the window and the downgrade rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

POINTS = "points"
"""The unit of the qualifying totals when the basis is points (spend uses currency codes)."""


class Basis(StrEnum):
    SPEND = "spend"
    POINTS = "points"


class WindowKind(StrEnum):
    ROLLING = "rolling"
    CALENDAR_YEAR = "calendar_year"
    LIFETIME = "lifetime"


class DowngradeMode(StrEnum):
    NEVER = "never"
    END_OF_PERIOD = "end_of_period"
    GRACE = "grace"


class Steps(StrEnum):
    ONE = "one"
    TO_QUALIFYING = "to_qualifying"


@dataclass(frozen=True, slots=True)
class Tier:
    """One rung. `enter` and `keep` map a unit (currency or "points") to its threshold."""

    code: str
    name: str
    rank: int
    multiplier: Decimal = Decimal(1)
    benefits: tuple[str, ...] = ()
    enter: Mapping[str, Decimal] = field(default_factory=dict)
    keep: Mapping[str, Decimal] = field(default_factory=dict)
    invite_only: bool = False

    @property
    def qualifies(self) -> bool:
        """Reachable by qualification (it has thresholds); the entry tier and invite-only don't."""
        return bool(self.enter) and not self.invite_only


@dataclass(frozen=True, slots=True)
class Window:
    """What the qualifying total counts: the last `days` local days, the calendar year, or all."""

    kind: WindowKind
    days: int = 0


@dataclass(frozen=True, slots=True)
class Downgrade:
    mode: DowngradeMode
    steps: Steps = Steps.ONE
    grace_days: int = 0


@dataclass(frozen=True, slots=True)
class Programme:
    """The whole rule set; tiers are ordered from the entry tier (rank 0) upwards."""

    tiers: tuple[Tier, ...]
    basis: Basis
    window: Window
    downgrade: Downgrade
    zone: ZoneInfo
    warn_days: int = 30

    def tier(self, code: str) -> Tier:
        for tier in self.tiers:
            if tier.code == code:
                return tier
        raise KeyError(code)

    def knows(self, code: str) -> bool:
        return any(tier.code == code for tier in self.tiers)

    @property
    def entry(self) -> Tier:
        return self.tiers[0]

    @property
    def ladder(self) -> tuple[Tier, ...]:
        """The tiers qualification moves along: the entry tier and every tier with thresholds."""
        return tuple(t for t in self.tiers if t.rank == 0 or t.qualifies)

    @property
    def units(self) -> tuple[str, ...]:
        """Units that have thresholds, in the order the first qualifying tier names them."""
        for tier in self.tiers:
            if tier.qualifies:
                return tuple(tier.enter)
        return ()

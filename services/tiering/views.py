"""What the tiering HTTP API returns and accepts (JSON bodies; money as decimal strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
)

from services.tiering.adapters.history import HistoryEntry
from services.tiering.domain.progress import Progress, Target
from services.tiering.domain.rules import POINTS, Programme
from services.tiering.domain.state import Floor, TierState
from shared.api_inputs import Instant, NonBlankText, PlainText

# Amounts read back from PostgreSQL may carry an exponent (Decimal("6.00E+6")): always write
# plain digits, as the event contracts do.
DecimalText = Annotated[
    Decimal, PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json")
]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class AmountView(_View):
    """An amount in a currency (basis spend) or in points (currency null)."""

    amount: DecimalText
    currency: str | None


class FloorView(_View):
    kind: str = Field(description="'manual' or 'membership'.")
    tier: str
    starts_at: datetime
    ends_at: datetime
    reason: str


class TierView(_View):
    """The tier in force, what it gives, and where qualification stands."""

    customer_id: str
    tier: str
    tier_name: str
    since: datetime | None
    multiplier: DecimalText
    benefits: list[str]
    earned_tier: str = Field(description="The tier qualification gives, below any floor.")
    review_at: datetime | None = Field(description="When the earned tier is next reviewed.")
    grace_ends_at: datetime | None
    floors: list[FloorView] = Field(description="Manual and membership floors, current or future.")
    basis: str
    qualifying: list[AmountView] = Field(description="What the window counts now, per unit.")


class TargetView(_View):
    tier: str
    tier_name: str
    needed: list[AmountView] = Field(description="Reaching any one of these amounts suffices.")
    deadline: datetime | None


class ProgressView(_View):
    customer_id: str
    tier: str
    earned_tier: str
    basis: str
    qualifying: list[AmountView]
    next: TargetView | None = Field(description="The tier above the earned one, if any.")
    keep: TargetView | None = Field(description="What keeps the earned tier at its review.")


class HistoryItem(_View):
    event_id: str
    from_tier: str
    to_tier: str
    direction: str
    reason: str
    qualifying: AmountView
    effective_at: datetime


class HistoryView(_View):
    customer_id: str
    items: list[HistoryItem] = Field(description="Newest first.")


class ManualTierRequest(BaseModel):
    """Hold `tier` at least until `ends_at`; it expires by itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tier: PlainText = Field(max_length=64, description="A tier code of the programme.")
    ends_at: Instant = Field(description="Later than now and than `starts_at` (else 422).")
    reason: NonBlankText = Field(max_length=255)
    starts_at: Instant | None = Field(default=None, description="Default: now.")


def amount(unit: str, value: Decimal) -> AmountView:
    return AmountView(amount=value, currency=None if unit == POINTS else unit)


def tier_view(
    programme: Programme,
    state: TierState,
    floors: list[Floor],
    qualifying: dict[str, Decimal],
    grace_ends_at: datetime | None,
) -> TierView:
    tier = programme.tier(state.tier)
    return TierView(
        customer_id=state.customer_id,
        tier=tier.code,
        tier_name=tier.name,
        since=state.tier_since,
        multiplier=tier.multiplier,
        benefits=list(tier.benefits),
        earned_tier=state.earned,
        review_at=state.review_at,
        grace_ends_at=grace_ends_at,
        floors=[
            FloorView(
                kind=f.kind.value,
                tier=f.tier,
                starts_at=f.starts_at,
                ends_at=f.ends_at,
                reason=f.reason,
            )
            for f in floors
        ],
        basis=programme.basis.value,
        qualifying=[amount(u, v) for u, v in qualifying.items()],
    )


def progress_view(programme: Programme, state: TierState, progress: Progress) -> ProgressView:
    return ProgressView(
        customer_id=state.customer_id,
        tier=state.tier,
        earned_tier=state.earned,
        basis=programme.basis.value,
        qualifying=[amount(u, v) for u, v in progress.totals.items()],
        next=_target(programme, progress.next),
        keep=_target(programme, progress.keep),
    )


def _target(programme: Programme, target: Target | None) -> TargetView | None:
    if target is None:
        return None
    return TargetView(
        tier=target.tier,
        tier_name=programme.tier(target.tier).name,
        needed=[amount(u, v) for u, v in target.needed.items()],
        deadline=target.deadline,
    )


def history_view(customer_id: str, entries: list[HistoryEntry]) -> HistoryView:
    return HistoryView(
        customer_id=customer_id,
        items=[
            HistoryItem(
                event_id=e.event_id,
                from_tier=e.from_tier,
                to_tier=e.to_tier,
                direction=e.direction,
                reason=e.reason,
                qualifying=amount(e.unit, e.qualifying_amount),
                effective_at=e.effective_at,
            )
            for e in entries
        ],
    )

"""How many points a paid amount earns."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EarnRate(BaseModel):
    """`points` points for every whole `per_amount` paid, in the currency it is configured for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_amount: Decimal = Field(gt=0)
    points: int = Field(gt=0)

    @model_validator(mode="after")
    def _finite(self) -> EarnRate:
        if not self.per_amount.is_finite():
            raise ValueError("per_amount must be a finite number")
        return self


def points_for(amount: Decimal, rate: EarnRate, multiplier: Decimal = Decimal(1)) -> int:
    """Points for a paid amount, rounded down to whole units of `per_amount`, times the tier's
    multiplier, rounded down again.

    Rounding rule: only completed units earn, so 259,000 VND at 1 point per 10,000 VND earns
    25 points and 19.99 USD at 1 point per 1 USD earns 19. The multiplier applies to those
    base points and the result is rounded down: 25 points at 1.25 earn 31 (31.25). A negative
    amount earns nothing.
    """
    if amount <= 0:
        return 0
    units = (amount / rate.per_amount).to_integral_value(rounding=ROUND_FLOOR)
    base = int(units) * rate.points
    return int((base * multiplier).to_integral_value(rounding=ROUND_FLOOR))

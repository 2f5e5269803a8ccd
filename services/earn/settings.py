"""Settings of the earn service (LOYALTY_* environment variables)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, StringConstraints

from services.earn.domain.points import EarnRate
from shared.settings import CommonSettings

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


def _default_rates() -> dict[str, EarnRate]:
    # 1 point per 10,000 VND and 1 point per 1 USD; shops set their own in LOYALTY_EARN_RATES.
    return {
        "VND": EarnRate(per_amount=Decimal(10_000), points=1),
        "USD": EarnRate(per_amount=Decimal(1), points=1),
    }


class EarnSettings(CommonSettings):
    """LOYALTY_EARN_RATES is JSON: {"VND": {"per_amount": "10000", "points": 1}, ...}."""

    earn_rates: dict[CurrencyCode, EarnRate] = Field(default_factory=_default_rates)
    http_port: int | None = 8001

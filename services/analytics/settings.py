"""Settings of the analytics service (LOYALTY_* environment variables)."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from shared.settings import CommonSettings


def _default_point_values() -> dict[str, Decimal]:
    # 1% back at the default earn rates (1 point per 10,000 VND and per 1 USD).
    return {"VND": Decimal(100), "USD": Decimal("0.01")}


class AnalyticsSettings(CommonSettings):
    """Defaults of the report: currency, time zone, churn window, attribution window."""

    http_port: int | None = 8004
    # Money figures are in one currency at a time; the report's currency unless a query names one.
    analytics_currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    # Months and the period's dates are days in this zone.
    analytics_time_zone: str = "UTC"
    # A customer without an order for this long is lost (churned).
    analytics_churn_after_days: int = Field(default=180, ge=1, le=3650)
    # An order this many days after a message is counted as a conversion of that message.
    analytics_attribution_days: int = Field(default=7, ge=1, le=365)
    # What one point is worth, per currency: the money value of the points liability.
    analytics_point_values: dict[str, Decimal] = Field(default_factory=_default_point_values)
    # A platform key of the report routes (every shop, and the whole platform), beside the keys
    # the shops service makes; none by default.
    analytics_api_key: SecretStr | None = None
    # An overview requested in the last day is recomputed once it is older than this.
    analytics_overview_every_s: float = Field(default=60, ge=1, le=86400)

    @field_validator("analytics_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

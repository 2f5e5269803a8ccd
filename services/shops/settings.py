"""Settings of the shops service (LOYALTY_* environment variables)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from shared.settings import CommonSettings


class ShopsSettings(CommonSettings):
    """The admin API's port and how far ahead of its publication a version may start."""

    http_port: int | None = 8005
    # A version starts this long after its publication at the earliest: the time every
    # service's replicas have to hold it before an event of its time arrives, so that applying
    # events live gives what a replay gives. Publishing never rewrites what events earned.
    shops_effective_lead_s: float = Field(default=30.0, ge=0, le=3600)

    @property
    def effective_lead(self) -> timedelta:
        return timedelta(seconds=self.shops_effective_lead_s)

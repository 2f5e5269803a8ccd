"""Settings of the shops service (LOYALTY_* environment variables)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from shared.settings import CommonSettings


class ShopsSettings(CommonSettings):
    """The admin API's port and how far in the past a published version may start."""

    http_port: int | None = 8005
    # A version's effective_from may be this far behind the clock (a request's own transit),
    # never more: publishing never rewrites what events already earned.
    shops_effective_skew_s: float = Field(default=60.0, ge=0, le=3600)

    @property
    def effective_skew(self) -> timedelta:
        return timedelta(seconds=self.shops_effective_skew_s)

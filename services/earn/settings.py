"""Settings of the earn service (LOYALTY_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from shared.settings import CommonSettings


class EarnSettings(CommonSettings):
    """The programme itself (rates, campaigns, rewards, expiry...) is a file: see
    docs/programme.md. Without LOYALTY_PROGRAMME_FILE the shipped example runs."""

    programme_file: Path | None = None
    programme_poll_s: float = Field(default=5.0, ge=0, description="0 never reads it again.")
    release_interval_s: float = Field(default=30.0, gt=0)
    release_chunk: int = Field(default=1000, ge=1, le=100_000)
    expiry_interval_s: float = Field(
        default=3600.0, gt=0, description="How often points due to expire (and warnings) are done."
    )
    birthday_interval_s: float = Field(
        default=600.0, gt=0, description="How often birthdays begun are awarded."
    )
    coalition_sweep_interval_s: float = Field(
        default=600.0,
        gt=0,
        description="How often member shops' own balances are carried into their coalition's.",
    )
    scheduled_chunk: int = Field(
        default=500, ge=1, le=100_000, description="Accounts or customers per transaction."
    )
    admin_api_key: SecretStr | None = None
    http_port: int | None = 8001

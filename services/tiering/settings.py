"""Settings of the tiering service (LOYALTY_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from shared.settings import CommonSettings


class TieringSettings(CommonSettings):
    """The programme file, the admin API key and the schedule of the evaluation."""

    http_port: int | None = 8002
    # The tier programme (TOML); the shipped services/tiering/programme.example.toml when unset.
    tiering_programme: Path | None = None
    # Required in X-API-Key by PUT /v1/customers/{id}/manual-tier; unset disables that route.
    tiering_admin_api_key: SecretStr | None = None
    # How often the scheduled evaluation looks for customers with something due.
    tiering_evaluation_interval_s: float = Field(default=3600.0, gt=0)
    # Customers locked and evaluated per transaction by the scheduled evaluation.
    tiering_evaluation_chunk: int = Field(default=500, ge=1, le=10_000)
    # Refunds and cancellations of orders never seen are kept this long, then dropped.
    tiering_parked_retention_days: int = Field(default=90, ge=1)

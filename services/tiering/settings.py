"""Settings of the tiering service (LOYALTY_* environment variables)."""

from __future__ import annotations

from shared.settings import CommonSettings


class TieringSettings(CommonSettings):
    """The shared settings; the tiering rules add theirs here."""

    http_port: int | None = 8002

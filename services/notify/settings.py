"""Settings of the notify service (LOYALTY_* environment variables)."""

from __future__ import annotations

from shared.settings import CommonSettings


class NotifySettings(CommonSettings):
    """The shared settings; the notify rules add theirs here."""

    http_port: int | None = 8003

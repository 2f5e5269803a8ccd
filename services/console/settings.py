"""Settings of the console (LOYALTY_* environment variables)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr

from shared.settings import CommonSettings


class ConsoleSettings(CommonSettings):
    """Where the other services answer, with which key, and how accounts and sessions behave."""

    http_port: int | None = 8006
    # A platform key (`loyalty keys create --platform`): the console reaches every service's
    # API with it, naming the signed-in user's shop in X-Shop-Id. Unset, the pages that read
    # another service say that it is missing; signing in still works.
    console_api_key: SecretStr | None = None
    console_earn_url: str = "http://127.0.0.1:8001"
    console_tiering_url: str = "http://127.0.0.1:8002"
    console_notify_url: str = "http://127.0.0.1:8003"
    console_analytics_url: str = "http://127.0.0.1:8004"
    console_shops_url: str = "http://127.0.0.1:8005"
    console_upstream_timeout_s: float = Field(default=2.0, gt=0, le=60)
    # Invitation links and the widget snippet name the console by this address.
    console_public_url: str = "http://127.0.0.1:8006"
    console_session_idle_s: int = Field(default=1800, ge=60)
    console_session_max_s: int = Field(default=43_200, ge=60)
    # argon2id, RFC 9106's low-memory profile by default; tests lower the costs.
    console_argon2_time_cost: int = Field(default=3, ge=1)
    console_argon2_memory_kib: int = Field(default=65_536, ge=8)
    console_argon2_parallelism: int = Field(default=4, ge=1)
    console_login_failures_per_email: int = Field(default=5, ge=1)
    console_login_failures_per_address: int = Field(default=30, ge=1)
    console_login_window_s: int = Field(default=900, ge=1)
    console_invitation_ttl_h: float = Field(default=72, gt=0, le=24 * 30)
    # The operations page reads dead letters from console.dead_letters, which a background
    # pass fills from every .dlq topic this often; it shows at most `_shown` of them.
    console_dead_letters_index_s: float = Field(default=10.0, gt=0, le=3600)
    console_dead_letters_shown: int = Field(default=200, ge=1, le=5_000)
    console_dead_letters_replay_timeout_s: float = Field(default=60.0, gt=0, le=600)

    @property
    def session_idle(self) -> timedelta:
        return timedelta(seconds=self.console_session_idle_s)

    @property
    def session_max(self) -> timedelta:
        return timedelta(seconds=self.console_session_max_s)

    @property
    def invitation_ttl(self) -> timedelta:
        return timedelta(hours=self.console_invitation_ttl_h)

    @property
    def login_window(self) -> timedelta:
        return timedelta(seconds=self.console_login_window_s)

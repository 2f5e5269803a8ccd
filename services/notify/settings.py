"""Settings of the notify service (LOYALTY_* environment variables), checked at start."""

from __future__ import annotations

import base64
import binascii
from datetime import time, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings


class ReminderStep(BaseModel):
    """One cart reminder: sent `after_minutes` after the cart was left, with a coupon or not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after_minutes: int = Field(gt=0, le=60 * 24 * 30)
    coupon: str | None = Field(default=None, min_length=1, max_length=64)


def _default_steps() -> tuple[ReminderStep, ...]:
    return (
        ReminderStep(after_minutes=60),
        ReminderStep(after_minutes=24 * 60, coupon="COMEBACK10"),
    )


class NotifySettings(CommonSettings):
    """Where to send from and how: SMTP, VAPID, quiet hours, cap, reminder steps, links."""

    # A refused setting is told without the values given: they hold the SMTP password, the
    # VAPID key and the database URL. (Merged with CommonSettings' configuration.)
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    http_port: int | None = 8003

    # Email over SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    # none: plain TCP (a local relay); starttls: upgrade after connecting; tls: TLS from the start
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    # A login over smtp_tls=none sends the password in clear: refused unless this says the
    # network to the server is trusted (a relay on the same host, say).
    smtp_allow_plaintext_auth: bool = False
    smtp_validate_certs: bool = True
    smtp_ca_file: Path | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    smtp_pool_size: int = Field(default=4, ge=1, le=100)
    mail_from: str = "Loyalty <loyalty@localhost>"
    mail_unsubscribe_mailto: str | None = None

    # Web Push (RFC 8030, 8291, 8292): the VAPID private key as base64url of its 32 raw bytes
    vapid_private_key: SecretStr | None = None
    vapid_subject: str = "mailto:loyalty@localhost"
    push_ttl_s: int = Field(default=24 * 3600, ge=0, le=28 * 24 * 3600)
    push_timeout_s: float = Field(default=10.0, gt=0)
    # A CA bundle trusted for push endpoints besides the system's (a private push service).
    push_ca_file: Path | None = None

    # Rules
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(8, 0)
    frequency_cap: int = Field(default=2, ge=1)
    frequency_window_days: int = Field(default=7, ge=1)
    cart_reminder_steps: tuple[ReminderStep, ...] = Field(default_factory=_default_steps)
    winback_days: int = Field(default=180, ge=1)
    winback_coupon: str = "WELCOMEBACK"
    winback_min_order: str = "300000"
    birthday_voucher: str = "BIRTHDAY"
    default_locale: str = "vi-VN"
    default_currency: str = "VND"

    # Delivery; worker_enabled=false leaves sending to `loyalty notify run-due` (or another replica)
    worker_enabled: bool = True
    # Serve only customers whose id starts with this ('' serves all): splits the work of
    # separate deployments (or test sessions) that share one database.
    worker_scope: str = Field(default="", max_length=64)
    max_attempts: int = Field(default=6, ge=1, le=50)
    retry_base_s: float = Field(default=60.0, gt=0)
    lease_s: float = Field(default=120.0, gt=0)
    worker_batch: int = Field(default=50, ge=1, le=1000)
    # Customers messaged at once per process, each with a connection of the worker's own pool.
    # Twice the SMTP connections: a message holds its slot for database work before and after
    # its SMTP exchange, so with as many slots as connections the connections sit idle.
    worker_concurrency: int = Field(default=8, ge=1, le=64)
    worker_idle_s: float = Field(default=5.0, gt=0)
    template_max_bytes: int = Field(default=256 * 1024, ge=1024)

    # Links: the shop's storefront (where "shop now" and a push notification lead), and this
    # service's own address (the base of unsubscribe links); unsubscribe tokens
    storefront_url: str = "https://shop.example"
    public_base_url: str = "http://127.0.0.1:8003"
    unsubscribe_secret: SecretStr | None = None

    # The console's address, as the console knows it (the same variable,
    # LOYALTY_CONSOLE_PUBLIC_URL): an invitation's link must lead there, and the mail names it.
    console_public_url: str = "http://127.0.0.1:8006"
    # Send only the staff mail of shops whose id starts with this ('' sends all): as
    # worker_scope, for deployments (or test sessions) that share one database.
    staff_mail_scope: str = Field(default="", max_length=64)

    # A platform key of the customers' routes (every shop), beside the keys the shops service
    # makes; none by default.
    notify_api_key: SecretStr | None = None

    @field_validator("storefront_url", "public_base_url", "console_public_url")
    @classmethod
    def _absolute_url(cls, value: str, info: ValidationInfo) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{info.field_name} must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("vapid_private_key")
    @classmethod
    def _vapid_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError("vapid_private_key must be base64url of a 32-byte P-256 private key")
        return SecretStr(text)

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        _name, address = parseaddr(value)
        if "@" not in address or not address.rpartition("@")[2]:
            raise ValueError("mail_from must be an address such as 'Shop <loyalty@shop.example>'")
        if not address.rpartition("@")[0].isascii():
            raise ValueError("mail_from's local part must be ASCII (SMTPUTF8 is not supported)")
        return value

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_subject(cls, value: str) -> str:
        if not value.startswith(("mailto:", "https://")):
            raise ValueError("vapid_subject must be a mailto: or https: URI (RFC 8292)")
        return value

    @field_validator("cart_reminder_steps")
    @classmethod
    def _steps_in_order(cls, steps: tuple[ReminderStep, ...]) -> tuple[ReminderStep, ...]:
        delays = [s.after_minutes for s in steps]
        if delays != sorted(set(delays)):
            raise ValueError("cart_reminder_steps must have increasing, distinct after_minutes")
        return steps

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("smtp_user and smtp_password are given together or not at all")
        in_clear = self.smtp_tls == "none" and not self.smtp_allow_plaintext_auth
        if self.smtp_user is not None and in_clear:
            raise ValueError(
                "smtp_user with smtp_tls=none would send the password in clear: set smtp_tls "
                "to starttls or tls, or smtp_allow_plaintext_auth=true for a server on a "
                "trusted network"
            )
        return self

    @property
    def frequency_window(self) -> timedelta:
        return timedelta(days=self.frequency_window_days)

    def require_secrets(self) -> str:
        """The unsubscribe signing secret; a clear error when it is missing or weak."""
        if self.unsubscribe_secret is None:
            raise ValueError(
                "LOYALTY_UNSUBSCRIBE_SECRET must be set (32 or more characters): it signs "
                "the unsubscribe links of every message"
            )
        secret = self.unsubscribe_secret.get_secret_value()
        if len(secret) < 32:
            raise ValueError("LOYALTY_UNSUBSCRIBE_SECRET must have 32 or more characters")
        return secret

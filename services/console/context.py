"""What every route of the console is given: the runtime, settings, password hasher, policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from starlette.requests import Request

from services.console.adapters.passwords import Passwords
from services.console.adapters.upstream import ShopApi, Upstream
from services.console.handlers import SignInPolicy
from services.console.settings import ConsoleSettings
from shared.runtime import Runtime


@dataclass(frozen=True)
class Console:
    runtime: Runtime
    settings: ConsoleSettings
    passwords: Passwords
    policy: SignInPolicy
    upstream: Upstream

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.require_pool()

    def now(self) -> datetime:
        return self.runtime.clock.now()

    def shop_api(self, shop_id: str, acting_user: str) -> ShopApi:
        return ShopApi(shop_id, acting_user, self.upstream)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def make_passwords(settings: ConsoleSettings) -> Passwords:
    return Passwords(
        time_cost=settings.console_argon2_time_cost,
        memory_kib=settings.console_argon2_memory_kib,
        parallelism=settings.console_argon2_parallelism,
    )


def make_upstream(settings: ConsoleSettings) -> Upstream:
    key = settings.console_api_key
    return Upstream(
        {
            "earn": settings.console_earn_url,
            "tiering": settings.console_tiering_url,
            "notify": settings.console_notify_url,
            "analytics": settings.console_analytics_url,
            "shops": settings.console_shops_url,
        },
        api_key=None if key is None else key.get_secret_value(),
        timeout_s=settings.console_upstream_timeout_s,
    )


def make_console(
    runtime: Runtime, settings: ConsoleSettings, upstream: Upstream | None = None
) -> Console:
    return Console(
        runtime=runtime,
        settings=settings,
        passwords=make_passwords(settings),
        policy=SignInPolicy(
            failures_per_email=settings.console_login_failures_per_email,
            failures_per_address=settings.console_login_failures_per_address,
            window=settings.login_window,
            session_idle=settings.session_idle,
            session_max=settings.session_max,
        ),
        upstream=upstream or make_upstream(settings),
    )

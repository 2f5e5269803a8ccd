"""The console in the test process, with a clock the tests move, and builders of accounts."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from infrastructure import Endpoints
from pydantic import SecretStr
from shops_support import ShopsService, shops_settings
from support import eventually, own_groups, running

from services.console import handlers
from services.console.adapters.accounts import User
from services.console.adapters.upstream import Upstream
from services.console.bootstrap import bootstrap
from services.console.context import Console
from services.console.domain.roles import Role
from services.console.settings import ConsoleSettings
from services.shops.bootstrap import bootstrap as shops_bootstrap
from shared.clock import FixedClock
from shared.runtime import Runtime

PASSWORD = "correct horse battery staple"
# The console's own origin, as a browser on its pages sends it.
ORIGIN = "https://console.test"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class ConsoleService:
    runtime: Runtime
    clock: FixedClock
    app: Any

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.require_pool()

    @property
    def console(self) -> Console:
        console: Console = self.app.api.state.console
        return console

    def client(self) -> httpx.AsyncClient:
        """A browser of its own (its own cookies), on https: the cookies are Secure."""
        transport = httpx.ASGITransport(app=self.app, client=(f"10.{_octets()}", 50000))
        return httpx.AsyncClient(transport=transport, base_url=ORIGIN)

    async def make_user(
        self,
        shops: dict[str, Role] | None = None,
        *,
        operator: bool = False,
        locale: str = "en",
        email: str | None = None,
    ) -> User:
        return await handlers.create_user(
            self.pool,
            passwords=self.console.passwords,
            email=email or f"staff-{uuid.uuid4().hex[:12]}@shop.example",
            name="Staff Member",
            password=PASSWORD,
            now=self.clock.now(),
            locale=locale,
            platform_operator=operator,
            shops=shops,
        )


def _octets() -> str:
    raw = uuid.uuid4().bytes
    return f"{raw[0]}.{raw[1]}.{raw[2]}"


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


async def sign_in_form(client: httpx.AsyncClient) -> str:
    page = await client.get("/sign-in")
    assert page.status_code == 200
    return csrf_of(page.text)


async def signed_in(
    client: httpx.AsyncClient, user: User, password: str = PASSWORD
) -> httpx.Response:
    """Sign the client in as the user through the sign-in form; the answer (a redirect)."""
    token = await sign_in_form(client)
    answer = await client.post(
        "/sign-in", data={"email": user.email, "password": password, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text
    return answer


def console_settings(infrastructure: Endpoints, **settings: Any) -> ConsoleSettings:
    defaults: dict[str, Any] = {
        "consumer_group_prefix": own_groups(),
        "kafka_bootstrap_servers": infrastructure.kafka_bootstrap,
        "database_url": SecretStr(infrastructure.database_url),
        "log_format": "console",
        "outbox_idle_poll_s": 0.05,
        # Cheap hashes: the costs are settings, argon2id all the same.
        "console_argon2_time_cost": 1,
        "console_argon2_memory_kib": 1024,
        "console_argon2_parallelism": 1,
    }
    return ConsoleSettings(**(defaults | settings))


@contextlib.asynccontextmanager
async def console_service(
    infrastructure: Endpoints, *, upstream: Upstream | None = None, **settings: Any
) -> AsyncIterator[ConsoleService]:
    """The console running against the real database and broker, its clock standing at the
    machine's time until a test moves it; `upstream` reaches the other services (none answer
    by default); `settings` override ConsoleSettings."""
    clock = FixedClock(datetime.now(UTC))
    app, runtime = bootstrap(
        console_settings(infrastructure, **settings), clock=clock, upstream=upstream
    )
    async with running(app, runtime):
        yield ConsoleService(runtime, clock, app)


CONSOLE_URLS = {
    "earn": "http://earn",
    "tiering": "http://tiering",
    "notify": "http://notify",
    "analytics": "http://analytics",
    "shops": "http://shops",
}


@dataclass(frozen=True)
class ShopsStack:
    """The console reaching a real shops service (in this process) with a platform key."""

    shops: ShopsService
    console: ConsoleService
    upstream: Upstream
    shops_transport: httpx.ASGITransport


@contextlib.asynccontextmanager
async def console_with_shops(
    infrastructure: Endpoints, *, notify: str = "none"
) -> AsyncIterator[ShopsStack]:
    """The shops service and the console in front of it. `notify="shops"` routes the notify
    calls to the shops service, which has no templates API: a notify without it answers 404
    the same way."""
    app, runtime = shops_bootstrap(shops_settings(infrastructure))
    transport = httpx.ASGITransport(app=app)
    async with (
        running(app, runtime),
        httpx.AsyncClient(transport=transport, base_url="http://shops") as api,
    ):
        shops = ShopsService(runtime, api, "")
        shops = ShopsService(runtime, api, await shops.new_key(None, ["platform"]))
        transports: dict[str, httpx.AsyncBaseTransport] = {"shops": transport}
        if notify == "shops":
            transports["notify"] = transport
        upstream = Upstream(
            CONSOLE_URLS, api_key=shops.platform_key, timeout_s=2, transports=transports
        )
        async with console_service(infrastructure, upstream=upstream) as console:
            yield ShopsStack(shops, console, upstream, transport)


async def indexed(pool: asyncpg.Pool, *positions: str) -> None:
    """Wait until the console's indexer has copied these dead letters into its table."""

    async def found() -> set[str]:
        rows = await pool.fetch(
            """SELECT dlq_topic || '/' || partition || '/' || "offset" FROM console.dead_letters
               WHERE dlq_topic || '/' || partition || '/' || "offset" = ANY($1::text[])""",
            list(positions),
        )
        return {r[0] for r in rows}

    await eventually(found, lambda seen: seen == set(positions), timeout=60)


# RFC 9110 token, and a number for `dur` (W3C Server Timing: metric-name *(";" param)).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf"^\s*({_TOKEN})\s*=\s*({_TOKEN}|\"[^\"]*\")\s*$")
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def server_timing(header: str) -> dict[str, list[float]]:
    """Each metric's durations in a well-formed Server-Timing header (AssertionError if not)."""
    metrics: dict[str, list[float]] = {}
    for metric in header.split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        assert re.fullmatch(_TOKEN, name), f"metric name {name!r} is no token in {header!r}"
        for param in params:
            matched = _PARAM.match(param)
            assert matched, f"parameter {param!r} is malformed in {header!r}"
            if matched.group(1) == "dur":
                assert _NUMBER.match(matched.group(2)), f"dur {param!r} is no number"
                metrics.setdefault(name, []).append(float(matched.group(2)))
    return metrics

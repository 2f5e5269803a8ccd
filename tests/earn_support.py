"""An earn service of a test's own: its programme, its clock, a database of its own; or only
such a database, migrated, for tests of earn's SQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from pydantic import SecretStr
from support import (
    database_of_its_own,
    eventually,
    loyalty_command,
    own_groups,
    running,
    unique,
)

import services.earn
from services.earn.bootstrap import bootstrap
from services.earn.programme import Programme
from services.earn.programme_book import ProgrammeBook
from services.earn.settings import EarnSettings
from shared.clock import Clock
from shared.db import apply_migrations
from shared.runtime import MESSAGING_MIGRATIONS, Runtime
from shared.shop_directory import ShopDirectory

EARN_MIGRATIONS = Path(services.earn.__file__).parent / "migrations"


@contextlib.asynccontextmanager
async def earn_database(infrastructure: Endpoints, name: str) -> AsyncIterator[str]:
    """A database of its own named after `name`, with earn's schema and the messaging tables;
    its URL."""
    async with database_of_its_own(infrastructure.database_url, name) as url:
        conn = await asyncpg.connect(url)
        try:
            components = [("messaging", MESSAGING_MIGRATIONS), ("earn", EARN_MIGRATIONS)]
            await apply_migrations(conn, "earn", components)
        finally:
            await conn.close()
        yield url


@dataclass(frozen=True)
class OwnEarn:
    database_url: str
    app: AsgiFastStream
    runtime: Runtime

    @property
    def directory(self) -> ShopDirectory:
        """The service's shop directory, as its HTTP API finds it."""
        api: FastAPI = self.app.api  # type: ignore[attr-defined] # shared/runtime.py _ServiceApp
        directory: ShopDirectory = api.state.shop_directory
        return directory

    async def passes_started(self) -> None:
        """Until each scheduled pass has finished its round at start: a test that then writes
        rows of its own never races the start's expiry or sweep for their locks."""
        passes = ("release", "expiry", "birthdays", "coalition_sweep")
        await eventually(
            lambda: asyncio.sleep(0, dict(self.runtime.rounds)),
            lambda rounds: all(rounds.get(name, 0) >= 1 for name in passes),
        )


def caught_up_directory() -> ShopDirectory:
    """A shop directory for earn's handlers driven by a test without the runtime: there is no
    loyalty.shops to read first."""
    directory = ShopDirectory("earn")
    directory.caught_up.set()
    return directory


@contextlib.asynccontextmanager
async def earn_of_its_own(
    infrastructure: Endpoints,
    name: str,
    *,
    programme: Programme | None = None,
    programmes: ProgrammeBook | None = None,
    clock: Clock | None = None,
    **settings: Any,
) -> AsyncIterator[OwnEarn]:
    """Earn running `programmes` (every shop's), or `programme` (or its programme file
    setting) for the shop `default`, in the test process, with
    consumer groups and a database of its own: the session's services never share its inbox,
    ledger or outbox. `settings` override EarnSettings."""
    async with database_of_its_own(infrastructure.database_url, f"loyalty_{name}") as url:
        defaults: dict[str, Any] = {
            "consumer_group_prefix": unique(name),
            "kafka_bootstrap_servers": infrastructure.kafka_bootstrap,
            "database_url": SecretStr(url),
            "log_format": "console",
            "batch_timeout_ms": 20,
            "outbox_idle_poll_s": 0.05,
            "http_port": None,
        }
        app, runtime = bootstrap(
            EarnSettings(**(defaults | settings)),
            clock=clock,
            programme=programme,
            programmes=programmes,
        )
        async with running(app, runtime):
            yield OwnEarn(url, app, runtime)


async def earn_command(database_url: str, kafka_bootstrap: str, programme: Path, *args: str) -> str:
    """Run `loyalty earn ARGS...` as an operator would, against a database and programme of
    the test's own; its standard output (the command must succeed)."""
    done = await asyncio.to_thread(
        loyalty_command,
        "earn",
        *args,
        env={
            "LOYALTY_DATABASE_URL": database_url,
            "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "LOYALTY_PROGRAMME_FILE": str(programme),
        },
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def earn_settings(infrastructure: Endpoints, url: str) -> EarnSettings:
    """Settings of an earn service on the database at `url`, with groups of its own."""
    return EarnSettings(
        consumer_group_prefix=own_groups(),
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(url),
        log_format="console",
        batch_timeout_ms=20,
        outbox_idle_poll_s=0.05,
        http_port=None,
    )

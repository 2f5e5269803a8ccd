"""The one place that wires the earn service: settings, programme, clock, handlers, runtime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import structlog
from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp

from services.earn.adapters.ledger import SCHEMA
from services.earn.adapters.unit_of_work import PostgresUnitOfWork, transactions
from services.earn.handlers import (
    apply_customers,
    apply_engagement,
    apply_orders,
    award_birthdays,
    expire_due,
    record_tier_changes,
    release_due,
    sweep_members,
)
from services.earn.http import build_api
from services.earn.programme import Programme, programme_from_text
from services.earn.programme_book import ProgrammeBook
from services.earn.programme_source import ProgrammeSource
from services.earn.settings import EarnSettings
from services.earn.unit_of_work import Transactions
from shared.clock import Clock, SystemClock
from shared.consumer import Incoming, Rejection
from shared.db import ACQUIRE_TIMEOUT_S, Connection
from shared.runtime import Runtime, ServiceDefinition, build_app
from shared.scheduled import every
from shared.shop_directory import ShopDirectory

log = structlog.get_logger(__name__)


def definition(
    settings: EarnSettings,
    *,
    clock: Clock | None = None,
    programme: Programme | None = None,
    programmes: ProgrammeBook | None = None,
    directory: ShopDirectory | None = None,
) -> ServiceDefinition:
    """`programmes` holds every shop's programme versions (fed by loyalty.shops as well);
    without it, or for the shop `default` when it has no versions, the programme given or
    else the programme file. Raises ProgrammeError, naming the setting, when the programme
    file is not valid. `directory` (tests) replaces the one made from the settings."""
    clock = clock or SystemClock()
    ahead_max = timedelta(seconds=settings.event_ahead_max_s)
    watch: tuple[Callable[[Runtime], Awaitable[None]], ...] = ()
    if programmes is not None:
        book = programmes
    elif programme is not None:
        book = ProgrammeBook.fixed(programme)
    else:
        source = ProgrammeSource(settings.programme_file, poll_s=settings.programme_poll_s)
        book = ProgrammeBook(lambda: source.current)
        watch = (source.watch,)
    if directory is None:
        configured = () if settings.admin_api_key is None else (settings.admin_api_key,)
        directory = ShopDirectory(SCHEMA, configured_keys=configured)
    directory.on_programme("earn", _feeding(book))
    holders = directory.holders

    async def orders(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        uow = PostgresUnitOfWork(conn)
        return await apply_orders(
            uow, events, programmes=book, clock=clock, holders=holders, ahead_max=ahead_max
        )

    async def releases(runtime: Runtime) -> None:
        """Pending points whose return window has passed become available; replicas share
        the work (SKIP LOCKED), each order is released once."""

        async def work(pool: asyncpg.Pool) -> object:
            while True:
                async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
                    uow = PostgresUnitOfWork(conn)
                    done = await release_due(
                        uow, book, due_by=clock.now(), limit=settings.release_chunk
                    )
                if done:
                    log.info("pending_points_released", orders=done)
                if done < settings.release_chunk:
                    return done

        await every(runtime, settings.release_interval_s, work, name="release")

    def http_api(runtime: Runtime) -> ASGIApp:
        return build_api(runtime, programmes=book)

    async def tiers(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        return await record_tier_changes(PostgresUnitOfWork(conn), events)

    async def customers(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        uow = PostgresUnitOfWork(conn)
        return await apply_customers(uow, events, programmes=book, holders=holders)

    async def engagement(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        uow = PostgresUnitOfWork(conn)
        return await apply_engagement(uow, events, programmes=book, holders=holders)

    chunk = settings.scheduled_chunk
    scheduled = (
        releases,
        # Points past their date expire, and warnings go out.
        _chunked(
            settings.expiry_interval_s,
            "expiry",
            clock,
            chunk,
            lambda uows, now, n: expire_due(uows, book, now=now, chunk=n),
        ),
        # Birthdays begun in each customer's time zone earn.
        _chunked(
            settings.birthday_interval_s,
            "birthdays",
            clock,
            chunk,
            lambda uows, now, n: award_birthdays(uows, book, now=now, chunk=n),
        ),
        # Member shops' own balances are carried into their coalition's.
        _chunked(
            settings.coalition_sweep_interval_s,
            "coalition_sweep",
            clock,
            chunk,
            lambda uows, now, n: sweep_members(uows, holders, book, now=now, chunk=n),
        ),
    )
    service = ServiceDefinition(
        name="earn",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        handlers={
            "shop.orders": orders,
            "loyalty.tiers": tiers,
            "shop.customers": customers,
            "shop.engagement": engagement,
        },
        produces=("loyalty.points", "loyalty.memberships"),
        http_api=http_api,
        # A pass never runs a shop under a programme version it has not read yet: the passes
        # start once the directory has read loyalty.shops to its end, as the handlers do.
        background=(*watch, *map(directory.after_catch_up, scheduled)),
    )
    return directory.attach(service)


def _chunked(
    interval_s: float,
    name: str,
    clock: Clock,
    chunk: int,
    run: Callable[[Transactions, datetime, int], Awaitable[object]],
) -> Callable[[Runtime], Awaitable[None]]:
    """A pass run every `interval_s` as of the clock's now, a transaction per chunk; replicas
    share it (each claims its rows with SKIP LOCKED)."""

    async def scheduled(runtime: Runtime) -> None:
        async def work(pool: asyncpg.Pool) -> object:
            return await run(transactions(pool), clock.now(), chunk)

        await every(runtime, interval_s, work, name=name)

    return scheduled


def _feeding(book: ProgrammeBook) -> Callable[[str, int, datetime, str], None]:
    """The directory's callback for earn versions; a document this release refuses raises
    ProgrammeError, which the directory logs (shop_programme_refused) and the other versions
    still apply."""

    def add(shop_id: str, version: int, effective_from: datetime, toml: str) -> None:
        programme = programme_from_text(toml, source=f"shop {shop_id} earn version {version}")
        book.add_version(shop_id, effective_from, programme)
        log.info("shop_programme_added", shop_id=shop_id, version=version)

    return add


def bootstrap(
    settings: EarnSettings | None = None,
    *,
    clock: Clock | None = None,
    programme: Programme | None = None,
    programmes: ProgrammeBook | None = None,
) -> tuple[AsgiFastStream, Runtime]:
    settings = settings or EarnSettings()
    clock = clock or SystemClock()
    service = definition(settings, clock=clock, programme=programme, programmes=programmes)
    return build_app(service, settings, clock=clock)

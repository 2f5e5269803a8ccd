"""`loyalty earn release|expire|birthdays|sweep-coalitions`: earn's scheduled work, run once
from the command line."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.earn.adapters.ledger import SCHEMA
from services.earn.adapters.unit_of_work import PostgresUnitOfWork, transactions
from services.earn.bootstrap import definition
from services.earn.handlers import award_birthdays, expire_due, release_due, sweep_members
from services.earn.programme import Programme, load_programme
from services.earn.programme_book import ProgrammeBook
from services.earn.settings import EarnSettings
from shared.clock import SystemClock
from shared.commands import instant, run_once
from shared.db import ACQUIRE_TIMEOUT_S
from shared.runtime import ServiceDefinition
from shared.shop_directory import ShopDirectory


def add_earn_commands(sub: Any) -> None:
    """Register `earn` and its subcommands on the `loyalty` parser's subparsers."""
    earn = sub.add_parser(
        "earn",
        help="run earn's scheduled work once: release, expiry, birthdays, coalition sweep",
    )
    commands = earn.add_subparsers(required=True, metavar="ACTION")

    release = commands.add_parser(
        "release", help="make the pending points and store credit due available, once"
    )
    release.add_argument(
        "--at", type=instant, help="as of this ISO 8601 time with a zone (default: now)"
    )
    release.set_defaults(func=_release)

    expire = commands.add_parser(
        "expire", help="expire the points due and send the expiry warnings due, once"
    )
    expire.add_argument(
        "--at", type=instant, help="as of this ISO 8601 time with a zone (default: now)"
    )
    expire.set_defaults(func=_expire)

    birthdays = commands.add_parser("birthdays", help="award the birthdays begun, once")
    birthdays.add_argument(
        "--at", type=instant, help="as of this ISO 8601 time with a zone (default: now)"
    )
    birthdays.set_defaults(func=_birthdays)

    sweep = commands.add_parser(
        "sweep-coalitions",
        help="carry member shops' own balances into their coalition's account, once",
    )
    sweep.add_argument(
        "--at", type=instant, help="as of this ISO 8601 time with a zone (default: now)"
    )
    sweep.set_defaults(func=_sweep_coalitions)


def _release(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool, settings: EarnSettings, programme: Programme) -> str:
        at = args.at or SystemClock().now()
        done = 0
        while True:  # a chunk per transaction, as the service's own pass
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
                released = await release_due(
                    PostgresUnitOfWork(conn),
                    ProgrammeBook.fixed(programme),
                    due_by=at,
                    limit=settings.release_chunk,
                )
            done += released
            if released < settings.release_chunk:
                return f"released the pending points of {done} order(s)"

    return _with_database(work)


def _expire(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool, settings: EarnSettings, programme: Programme) -> str:
        at = args.at or SystemClock().now()
        book = ProgrammeBook.fixed(programme)
        report = await expire_due(transactions(pool), book, now=at, chunk=settings.scheduled_chunk)
        return (
            f"looked at {report.accounts} account(s): {report.expired_points} point(s) expired, "
            f"{report.warnings} warning(s) sent"
        )

    return _with_database(work)


def _birthdays(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool, settings: EarnSettings, programme: Programme) -> str:
        at = args.at or SystemClock().now()
        book = ProgrammeBook.fixed(programme)
        done = await award_birthdays(
            transactions(pool), book, now=at, chunk=settings.scheduled_chunk
        )
        return f"awarded the birthdays of {done} customer(s)"

    return _with_database(work)


def _sweep_coalitions(args: argparse.Namespace) -> int:
    """The memberships and programme versions are those earn's tables hold (what the service
    read from loyalty.shops), read before the sweep."""
    settings = EarnSettings()
    directory = ShopDirectory(SCHEMA)
    loaded: list[Programme] = []
    book = ProgrammeBook(lambda: loaded[0])  # the file's programme serves the shop `default`

    def define(programme: Programme) -> ServiceDefinition:
        loaded.append(programme)
        return definition(settings, programmes=book, directory=directory)

    async def work(pool: asyncpg.Pool, _: Programme) -> str:
        at = args.at or SystemClock().now()
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            await directory.load(conn)
        report = await sweep_members(
            transactions(pool), directory.holders, book, now=at, chunk=settings.scheduled_chunk
        )
        refused = f"; refused (no rate for their currency): {', '.join(report.refused)}"
        return (
            f"carried {report.balances} balance(s) into coalitions, {report.points} point(s) net"
            + (refused if report.refused else "")
        )

    return run_once(
        settings,
        service="earn",
        load=lambda: load_programme(settings.programme_file),
        define=define,
        work=work,
    )


def _with_database(
    work: Callable[[asyncpg.Pool, EarnSettings, Programme], Awaitable[str]],
) -> int:
    """Load the programme, migrate, do the work, publish what it enqueued, say what happened."""
    settings = EarnSettings()
    return run_once(
        settings,
        service="earn",
        load=lambda: load_programme(settings.programme_file),
        define=lambda p: definition(settings, programme=p),
        work=lambda pool, p: work(pool, settings, p),
    )

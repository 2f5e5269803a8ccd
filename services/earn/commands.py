"""`loyalty earn expire|birthdays`: earn's scheduled work, run once from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg

from services.earn.bootstrap import definition
from services.earn.expiry import run_birthdays, run_expiry
from services.earn.programme import Programme, ProgrammeError, load_programme
from services.earn.settings import EarnSettings
from shared.clock import SystemClock
from shared.db import create_pool
from shared.logs import configure_logging
from shared.outbox import OutboxRelay
from shared.runtime import prepare_database


def add_earn_commands(sub: Any) -> None:
    """Register `earn` and its subcommands on the `loyalty` parser's subparsers."""
    earn = sub.add_parser("earn", help="run earn's scheduled work once: expiry, birthdays")
    commands = earn.add_subparsers(required=True, metavar="ACTION")

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


def instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a zone, as in {text}+07:00 or {text}Z")
    return at


def _expire(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool, settings: EarnSettings, programme: Programme) -> str:
        at = args.at or SystemClock().now()
        report = await run_expiry(pool, programme, now=at, chunk=settings.scheduled_chunk)
        return (
            f"looked at {report.accounts} account(s): {report.expired_points} point(s) expired, "
            f"{report.warnings} warning(s) sent"
        )

    return _with_database(work)


def _birthdays(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool, settings: EarnSettings, programme: Programme) -> str:
        at = args.at or SystemClock().now()
        done = await run_birthdays(pool, programme, now=at, chunk=settings.scheduled_chunk)
        return f"awarded the birthdays of {done} customer(s)"

    return _with_database(work)


def _with_database(
    work: Callable[[asyncpg.Pool, EarnSettings, Programme], Awaitable[str]],
) -> int:
    """Load the programme, migrate, do the work, publish what it enqueued, say what happened."""
    settings = EarnSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="earn")
    try:
        programme = load_programme(settings.programme_file)
    except ProgrammeError as exc:
        print(exc, file=sys.stderr)
        return 2

    async def run() -> str:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=4)
        try:
            service = definition(settings, programme=programme)
            await prepare_database(pool, service)
            summary = await work(pool, settings, programme)
            relay = OutboxRelay(
                pool=pool,
                schema=service.schema,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                service="earn",
            )
            await relay.start()
            await relay.stop()  # stops after draining what the work enqueued
            return summary
        finally:
            await pool.close()

    print(asyncio.run(run()))
    return 0

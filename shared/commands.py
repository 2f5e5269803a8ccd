"""What the services' one-shot commands share: times given on the command line, and running
scheduled work once against the database with what it enqueued published before exit."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import asyncpg

from shared.db import create_pool
from shared.kafka_connection import KafkaConnection, check_access
from shared.logs import configure_logging
from shared.outbox import OutboxRelay
from shared.programme_files import ProgrammeError
from shared.runtime import ServiceDefinition, prepare_database
from shared.settings import CommonSettings

P = TypeVar("P")


def instant(text: str) -> datetime:
    """An argparse type: an ISO 8601 time that names its zone."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a zone, as in {text}+07:00 or {text}Z")
    return at


def run_once(
    settings: CommonSettings,
    *,
    service: str,
    load: Callable[[], P],
    define: Callable[[P], ServiceDefinition],
    work: Callable[[asyncpg.Pool, P], Awaitable[str]],
) -> int:
    """Load the programme, migrate, do the work, publish what it enqueued, say what happened.

    Exit status 2 when the programme is not valid (its problems on stderr), 0 otherwise."""
    configure_logging(fmt=settings.log_format, level=settings.log_level, service=service)
    try:
        programme = load()
    except ProgrammeError as exc:
        print(exc, file=sys.stderr)
        return 2

    async def run() -> str:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=4)
        try:
            kafka = KafkaConnection.from_settings(settings)
            await check_access(kafka)
            definition = define(programme)
            await prepare_database(pool, definition, contract=settings.migrations == "all")
            summary = await work(pool, programme)
            relay = OutboxRelay(
                pool=pool,
                schema=definition.schema,
                kafka=kafka,
                service=service,
            )
            await relay.start()
            await relay.stop()  # stops after draining what the work enqueued
            return summary
        finally:
            await pool.close()

    print(asyncio.run(run()))
    return 0

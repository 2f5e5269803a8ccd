"""`loyalty tiering evaluate|backfill`: the tiering tools of the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg

from services.tiering.backfill import BackfillBusy, backfill
from services.tiering.bootstrap import SCHEMA, definition
from services.tiering.domain.rules import Programme
from services.tiering.evaluation import run_evaluation
from services.tiering.programme import ProgrammeError, load_programme
from services.tiering.settings import TieringSettings
from shared.clock import SystemClock
from shared.db import create_pool
from shared.logs import configure_logging
from shared.outbox import OutboxRelay
from shared.runtime import prepare_database


def add_tiering_commands(sub: Any) -> None:
    """Register `tiering` and its subcommands on the `loyalty` parser's subparsers."""
    tiering = sub.add_parser("tiering", help="run the tier evaluation, or recompute every tier")
    commands = tiering.add_subparsers(required=True, metavar="ACTION")

    evaluate = commands.add_parser(
        "evaluate", help="apply what is due (downgrades, roll-off, warnings, floors), once"
    )
    evaluate.add_argument(
        "--at", type=_instant, help="evaluate as of this ISO 8601 time with a zone (default: now)"
    )
    evaluate.add_argument("--customer", action="append", help="only this customer (repeatable)")
    evaluate.set_defaults(func=_evaluate)

    replay = commands.add_parser(
        "backfill", help="recompute every tier from a replay of the orders (or points) topic"
    )
    replay.add_argument("--customer", action="append", help="only this customer (repeatable)")
    replay.add_argument("--batch", type=int, default=2000, help="records per transaction")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.set_defaults(func=_backfill)


def _instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a zone, as in {text}+07:00 or {text}Z")
    return at


def _evaluate(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool, settings: TieringSettings, programme: Programme) -> str:
        report = await run_evaluation(
            pool,
            programme=programme,
            schema=SCHEMA,
            now=args.at or SystemClock().now(),
            chunk=settings.tiering_evaluation_chunk,
            parked_retention_days=settings.tiering_parked_retention_days,
            only=args.customer,
        )
        return f"evaluated {report.customers} customer(s), {report.events} event(s) published"

    return _with_database(work)


def _backfill(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool, settings: TieringSettings, programme: Programme) -> str:
        report = await backfill(
            pool,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            programme=programme,
            clock=SystemClock(),
            customers=args.customer,
            batch_size=args.batch,
            progress=not args.no_progress,
        )
        return (
            f"replayed {report.records} record(s); {report.customers} customer(s) recomputed, "
            f"{report.changed} tier(s) changed, {report.skipped} moved on meanwhile (run again)"
        )

    try:
        return _with_database(work)
    except BackfillBusy as exc:
        print(exc, file=sys.stderr)
        return 1


def _with_database(
    work: Callable[[asyncpg.Pool, TieringSettings, Programme], Awaitable[str]],
) -> int:
    """Load the programme, migrate, do the work, publish what it enqueued, say what happened."""
    settings = TieringSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="tiering")
    try:
        programme = load_programme(settings.tiering_programme)
    except ProgrammeError as exc:
        print(exc, file=sys.stderr)
        return 2

    async def run() -> str:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=4)
        try:
            await prepare_database(pool, definition(settings, programme=programme))
            summary = await work(pool, settings, programme)
            relay = OutboxRelay(
                pool=pool,
                schema=SCHEMA,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                service="tiering",
            )
            await relay.start()
            await relay.stop()  # stops after draining what the work enqueued
            return summary
        finally:
            await pool.close()

    print(asyncio.run(run()))
    return 0

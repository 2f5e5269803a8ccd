"""`loyalty tiering evaluate|backfill`: the tiering tools of the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.tiering.backfill import BackfillBusy, backfill
from services.tiering.bootstrap import SCHEMA, definition, shop_directory
from services.tiering.domain.rules import Programme
from services.tiering.evaluation import run_evaluation
from services.tiering.programme import load_programme
from services.tiering.settings import TieringSettings
from services.tiering.shops import TierProgrammes, UnknownShop
from shared.callers import DEFAULT_SHOP
from shared.clock import SystemClock
from shared.commands import instant, run_once
from shared.errors import RejectedMessage
from shared.holders import Holders
from shared.kafka_connection import KafkaConnection


def add_tiering_commands(sub: Any) -> None:
    """Register `tiering` and its subcommands on the `loyalty` parser's subparsers."""
    tiering = sub.add_parser("tiering", help="run the tier evaluation, or recompute every tier")
    commands = tiering.add_subparsers(required=True, metavar="ACTION")

    evaluate = commands.add_parser(
        "evaluate", help="apply what is due (downgrades, roll-off, warnings, floors), once"
    )
    evaluate.add_argument(
        "--at", type=instant, help="evaluate as of this ISO 8601 time with a zone (default: now)"
    )
    evaluate.add_argument(
        "--customer", action="append", help="only this customer of --shop (repeatable)"
    )
    evaluate.add_argument("--shop", default=DEFAULT_SHOP, help="the shop of --customer")
    evaluate.set_defaults(func=_evaluate)

    replay = commands.add_parser(
        "backfill",
        help="recompute every tier of a shop from a replay of the orders (or points) topic",
    )
    replay.add_argument("--shop", default=DEFAULT_SHOP, help="the shop (default: default)")
    replay.add_argument("--customer", action="append", help="only this customer (repeatable)")
    replay.add_argument("--batch", type=int, default=2000, help="records per transaction")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.set_defaults(func=_backfill)


def _evaluate(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool, settings: TieringSettings, programme: Programme) -> str:
        only = None if args.customer is None else [(args.shop, c) for c in args.customer]
        programmes, holders = await stored_shops(pool, programme)
        report = await run_evaluation(
            pool,
            programmes=programmes,
            holders=holders,
            schema=SCHEMA,
            now=args.at or SystemClock().now(),
            chunk=settings.tiering_evaluation_chunk,
            parked_retention_days=settings.tiering_parked_retention_days,
            only=only,
        )
        return f"evaluated {report.customers} customer(s), {report.events} event(s) published"

    return _with_database(work)


class InCoalition(RejectedMessage):
    """A backfill of a coalition, or of a shop that was ever in one: its records are keyed by
    the holder at their time, which the replay of one shop's records does not follow."""

    def __init__(self, shop_id: str) -> None:
        super().__init__(
            f"shop {shop_id!r} is or was in a coalition: tiering backfills only shops that "
            "never were",
            error_class="InCoalition",
        )


def _backfill(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool, settings: TieringSettings, programme: Programme) -> str:
        programmes, holders = await stored_shops(pool, programme)
        if holders.is_coalition(args.shop) or holders.versions(args.shop):
            raise InCoalition(args.shop)
        report = await backfill(
            pool,
            kafka=KafkaConnection.from_settings(settings),
            programmes=programmes,
            shop_id=args.shop,
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
    except (BackfillBusy, UnknownShop, InCoalition) as exc:
        print(exc, file=sys.stderr)
        return 1


async def stored_shops(pool: asyncpg.Pool, default: Programme) -> tuple[TierProgrammes, Holders]:
    """Every shop's tier programme versions and memberships the service has stored from
    loyalty.shops; the programme file serves the shop `default` until a version is published
    for it."""
    programmes = TierProgrammes(default)
    directory = shop_directory(programmes)
    async with pool.acquire() as conn:
        await directory.load(conn)
    return programmes, directory.holders


def _with_database(
    work: Callable[[asyncpg.Pool, TieringSettings, Programme], Awaitable[str]],
) -> int:
    """Load the programme, migrate, do the work, publish what it enqueued, say what happened."""
    settings = TieringSettings()
    return run_once(
        settings,
        service="tiering",
        load=lambda: load_programme(settings.tiering_programme),
        define=lambda p: definition(settings, programme=p),
        work=lambda pool, p: work(pool, settings, p),
    )

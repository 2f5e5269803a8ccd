"""`loyalty notify run-due|preview`: process due messages once; render templates to files."""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from services.notify.bootstrap import (
    definition,
    make_renderer,
    make_shop_directory,
    make_shop_messages,
    make_worker,
)
from services.notify.domain.messages import TEMPLATES
from services.notify.preview import write_preview
from services.notify.settings import NotifySettings
from services.notify.staff_mail import STAFF_TEMPLATES
from shared.clock import FixedClock, SystemClock
from shared.db import create_pool
from shared.kafka_connection import KafkaConnection, check_access
from shared.logs import configure_logging
from shared.outbox import OutboxRelay
from shared.runtime import prepare_database

# Every template notify sends: customers' messages and staff mail.
PREVIEWED = (*TEMPLATES, *STAFF_TEMPLATES)


def add_notify_commands(sub: Any) -> None:
    """Register `notify` and its subcommands on the `loyalty` parser's subparsers."""
    notify = sub.add_parser("notify", help="send due messages once; preview templates")
    commands = notify.add_subparsers(required=True, metavar="ACTION")

    run_due = commands.add_parser("run-due", help="process the messages due now (or at --at)")
    run_due.add_argument("--at", type=_aware, help="ISO time with a zone, e.g. 2026-11-23T09:00Z")
    run_due.set_defaults(func=_run_due)

    preview = commands.add_parser("preview", help="render a template with sample data to files")
    preview.add_argument("template", choices=[*PREVIEWED, "all"])
    preview.add_argument("--locale", default="vi-VN", help="BCP 47 locale, e.g. vi-VN or en-US")
    preview.add_argument("--out", type=Path, default=Path("preview"), help="output directory")
    preview.set_defaults(func=_preview)


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("--at needs a time zone, e.g. 2026-11-23T09:00+07:00")
    return moment


def _run_due(args: argparse.Namespace) -> int:
    settings = NotifySettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="notify")
    outcomes = asyncio.run(run_due_once(settings, args.at))
    print("processed:", ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())) or "nothing due")
    return 0


async def run_due_once(settings: NotifySettings, at: datetime | None) -> Counter[str]:
    """One pass of the worker, then the outbox relayed, so the outcome events are published."""
    clock = FixedClock(at) if at is not None else SystemClock()
    kafka = KafkaConnection.from_settings(settings)
    await check_access(kafka)
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    relay = OutboxRelay(pool=pool, schema="notify", kafka=kafka, service="notify")
    try:
        await prepare_database(
            pool, definition(settings, clock), contract=settings.migrations == "all"
        )
        # Every shop's published settings and memberships, as the service's worker has them.
        shops = make_shop_messages(settings)
        directory = make_shop_directory(shops)
        async with pool.acquire() as conn:
            await directory.load(conn)
        worker = make_worker(pool, settings, clock, shops=shops, holders=directory.holders)
        await relay.start()
        try:
            return await worker.run_due(at)
        finally:
            for channel in worker.deliverer.channels.values():
                await channel.close()
            await relay.stop()
    finally:
        await pool.close()


def _preview(args: argparse.Namespace) -> int:
    renderer = make_renderer(NotifySettings())
    templates = PREVIEWED if args.template == "all" else (args.template,)
    for template in templates:
        for path in write_preview(renderer, template, args.locale, args.out):
            print(path)
    return 0

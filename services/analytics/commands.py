"""`loyalty analytics report`: the report of a period and segment, as tables, JSON or HTML."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from pathlib import Path
from typing import Any

from services.analytics.asking import Refusal, refusals, unknown_in
from services.analytics.bootstrap import SCHEMA, definition
from services.analytics.building import build_report
from services.analytics.rendering.page import render_html
from services.analytics.rendering.sections import render_text
from services.analytics.report import Report, ReportQuery, Segment
from services.analytics.settings import AnalyticsSettings
from shared.clock import SystemClock
from shared.db import create_pool
from shared.logs import configure_logging
from shared.runtime import prepare_database


def add_analytics_commands(sub: Any) -> None:
    """Register `analytics report` on the `loyalty` parser's subparsers."""
    analytics = sub.add_parser("analytics", help="retention, value, programme and message figures")
    commands = analytics.add_subparsers(required=True, metavar="ACTION")
    report = commands.add_parser("report", help="print the report of a period (tables)")
    report.add_argument("--from", dest="start", type=_day, required=True, help="YYYY-MM-DD")
    report.add_argument(
        "--to", dest="end", type=_day, required=True, help="YYYY-MM-DD, the day after the last"
    )
    report.add_argument(
        "--shop", help="only this shop's customers and facts (default: every shop's)"
    )
    report.add_argument("--tier", help="only customers in this tier at the period's end")
    report.add_argument("--cohort", help="only customers acquired in YYYY-MM")
    report.add_argument(
        "--currency", type=str.upper, help="orders in this currency (default: the setting)"
    )
    report.add_argument(
        "--attribution-days", type=int, help="conversion window of messages, 1 to 365 days"
    )
    report.add_argument("--html", type=Path, help="also write the report as an HTML file")
    report.add_argument("--json", action="store_true", help="print JSON instead of tables")
    report.set_defaults(func=_report)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def query_of(args: argparse.Namespace, settings: AnalyticsSettings) -> ReportQuery:
    return ReportQuery(
        start=args.start,
        end=args.end,
        time_zone=settings.analytics_time_zone,
        segment=Segment(
            shop=args.shop,
            tier=args.tier,
            cohort=args.cohort,
            currency=args.currency or settings.analytics_currency,
        ),
        churn_after_days=settings.analytics_churn_after_days,
        attribution_days=(
            settings.analytics_attribution_days
            if args.attribution_days is None
            else args.attribution_days
        ),
    )


async def read_report(settings: AnalyticsSettings, query: ReportQuery) -> Report | Refusal:
    """Migrate the schema if needed, then build the report from the database; the refusal
    instead when the facts know no such shop or tier."""
    pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        await prepare_database(pool, definition(settings), contract=settings.migrations == "all")
        async with pool.acquire() as conn:
            unknown = await unknown_in(conn, SCHEMA, query.segment)
            if unknown:
                return unknown[0]
            return await build_report(
                conn,
                SCHEMA,
                query,
                point_value=settings.analytics_point_values.get(query.segment.currency),
                now=SystemClock().now(),
            )
    finally:
        await pool.close()


def _report(args: argparse.Namespace) -> int:
    settings = AnalyticsSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="analytics")
    query = query_of(args, settings)
    found = refusals(
        args.start,
        args.end,
        cohort=args.cohort,
        currency=query.segment.currency,
        attribution_days=args.attribution_days,
    )
    report = found[0] if found else asyncio.run(read_report(settings, query))
    if isinstance(report, Refusal):
        option = report.parameter.replace("_", "-")
        print(f"loyalty analytics report: --{option}: {report.message}", file=sys.stderr)
        return 2
    print(report.model_dump_json(indent=2) if args.json else render_text(report))
    if args.html is not None:
        args.html.write_text(render_html(report), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    return 0

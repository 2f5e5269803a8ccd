"""The overview: a shop's figures of today and of this month so far, in a zone and a currency,
computed with the report's own queries over the report's population, so that each figure
equals the report's for the same period (today: [today, tomorrow); the month: [its first day,
tomorrow))."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

import asyncpg
from pydantic import Field

from services.analytics.adapters import activity, customers
from services.analytics.building import programme_of, retention_of, scope_of, tiers_of
from services.analytics.domain.period import Period
from services.analytics.report import Figures, ReportQuery, Segment
from shared.db import Connection
from shared.events import minor_units

DAILY_DAYS: Final = 30
DAILY_DAYS_BEFORE: Final = timedelta(days=DAILY_DAYS - 1)


class Messages(Figures):
    sent: int
    failed: int
    suppressed: int
    suppressed_by_reason: dict[str, int]


class PeriodFigures(Figures):
    start: date = Field(description="First local day of the period.")
    end: date = Field(description="Day after its last (exclusive): tomorrow.")
    new_customers: int = Field(
        description="Customers acquired in the period (signed up, or first ordered without a"
        " sign-up): the report's N."
    )
    points_issued: int
    points_redeemed: int
    points_expired: int
    messages: Messages = Field(description="Every trigger's messages together.")


class MonthFigures(PeriodFigures):
    retention_rate: Decimal | None = Field(
        description="(E - N) / S x 100 over the month so far, as the report's."
    )


class TierCount(Figures):
    tier: str = Field(description="The tier's code ('none': no tier).")
    customers: int


class DayPoints(Figures):
    day: date
    issued: int
    redeemed: int


class Overview(Figures):
    shop_id: str | None = Field(description="The shop or coalition; none: the whole platform.")
    as_of: datetime = Field(description="When these figures were computed.")
    time_zone: str
    currency: str
    customers: int = Field(description="Customers acquired by the end of today.")
    members: int = Field(description="Of those, customers in the programme.")
    points_outstanding: int = Field(description="The points liability at the end of today.")
    point_value: Decimal | None
    points_outstanding_value: Decimal | None = Field(description="In `currency`.")
    today: PeriodFigures
    month: MonthFigures
    tiers: list[TierCount] = Field(description="Customers per tier at the end of today.")
    daily: list[DayPoints] = Field(description=f"The last {DAILY_DAYS} days, today last.")


async def build_overview(
    conn: Connection,
    schema: str,
    segment: Segment,
    *,
    time_zone: str,
    point_value: Decimal | None,
    churn_after_days: int,
    now: datetime,
) -> Overview:
    """Every figure, in one repeatable-read transaction over one population."""
    today = now.astimezone(ZoneInfo(time_zone)).date()
    tomorrow = today + timedelta(days=1)
    month = ReportQuery(
        start=today.replace(day=1),
        end=tomorrow,
        time_zone=time_zone,
        segment=segment,
        churn_after_days=churn_after_days,
        attribution_days=1,  # no conversion figure here
    )
    period = Period(month.start, tomorrow, time_zone)
    units = minor_units(segment.currency)
    async with conn.transaction(isolation="repeatable_read"):
        scope = await customers.create_held(conn, scope_of(schema, month))
        # The population is of those acquired by the end: today's, the month's and the last
        # 30 days' alike; only where the points and messages start differs.
        await customers.create_population(conn, scope)
        day_scope = replace(scope, starts_at=period.instant(today))
        daily_scope = replace(scope, starts_at=period.instant(today - DAILY_DAYS_BEFORE))
        month_row = await activity.read_programme(conn, scope)
        today_row = await activity.read_programme(conn, day_scope)
        retention = retention_of(await customers.read_retention(conn, scope), units)
        # The report's count of new customers, from today's start (of the day's retention, only
        # that count holds: `stats` is the month's).
        today_new = int((await customers.read_retention(conn, day_scope))["new"])
        month_messages = await activity.read_message_outcomes(conn, scope)
        today_messages = await activity.read_message_outcomes(conn, day_scope)
        tier_rows = await activity.read_tiers_by_month(conn, scope, [scope.ends_at])
        daily_rows = await activity.read_points_by(conn, daily_scope, "day")
    programme = programme_of(month_row, point_value, units)
    return Overview(
        shop_id=segment.shop,
        as_of=now,
        time_zone=time_zone,
        currency=segment.currency,
        customers=programme.customers,
        members=programme.members,
        points_outstanding=programme.outstanding_points,
        point_value=point_value,
        points_outstanding_value=programme.liability_value,
        today=PeriodFigures(
            start=today,
            end=tomorrow,
            new_customers=today_new,
            **_points(today_row),
            messages=totals(today_messages),
        ),
        month=MonthFigures(
            start=month.start,
            end=tomorrow,
            new_customers=retention.new_customers,
            **_points(month_row),
            messages=totals(month_messages),
            retention_rate=retention.retention_rate,
        ),
        tiers=[
            TierCount(tier=tier, customers=n)
            for tier, n in tiers_of(tier_rows, period)[0].customers.items()
        ],
        daily=days_of(daily_rows, today),
    )


def _points(row: asyncpg.Record) -> dict[str, int]:
    return {
        "points_issued": int(row["issued"]),
        "points_redeemed": int(row["redeemed"]),
        "points_expired": int(row["expired"]),
    }


def totals(outcomes: list[asyncpg.Record]) -> Messages:
    """Every trigger's message outcomes added up (a suppression without reason: 'unknown')."""
    counts = {"sent": 0, "failed": 0, "suppressed": 0}
    reasons: dict[str, int] = {}
    for r in outcomes:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + int(r["messages"])
        if r["outcome"] == "suppressed":
            reason = r["reason"] or "unknown"
            reasons[reason] = reasons.get(reason, 0) + int(r["messages"])
    return Messages(
        sent=counts["sent"],
        failed=counts["failed"],
        suppressed=counts["suppressed"],
        suppressed_by_reason=dict(sorted(reasons.items())),
    )


def days_of(rows: list[asyncpg.Record], today: date) -> list[DayPoints]:
    """One entry per day of the last DAILY_DAYS, zeros where no points moved."""
    found = {r["day"]: r for r in rows}
    result = []
    for back in range(DAILY_DAYS - 1, -1, -1):
        day = today - timedelta(days=back)
        row = found.get(day)
        issued, redeemed = (int(row["issued"]), int(row["redeemed"])) if row else (0, 0)
        result.append(DayPoints(day=day, issued=issued, redeemed=redeemed))
    return result

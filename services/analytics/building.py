"""Build the report of one period and segment: the queries, then the formulas over them."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from services.analytics.adapters import activity, customers
from services.analytics.adapters.customers import Scope
from services.analytics.domain import formulas as f
from services.analytics.domain.period import Period, month_after, months_between
from services.analytics.report import (
    Cohort,
    CustomerGroup,
    PointsMonth,
    Programme,
    Purchases,
    Report,
    ReportQuery,
    Retention,
    TierMonth,
    TriggerMessages,
    Value,
)
from shared.db import Connection
from shared.events import minor_units


def cohort_month(text: str) -> date:
    """'2025-03' -> 2025-03-01; ValueError otherwise."""
    year, _, month = text.partition("-")
    if len(year) != 4 or len(month) != 2:
        raise ValueError(f"a cohort is a month as YYYY-MM, not {text!r}")
    return date(int(year), int(month), 1)


def scope_of(schema: str, query: ReportQuery) -> Scope:
    period = Period(query.start, query.end, query.time_zone)
    segment = query.segment
    cohort = cohort_month(segment.cohort) if segment.cohort else None
    return Scope(
        schema=schema,
        starts_at=period.starts_at,
        ends_at=period.ends_at,
        time_zone=query.time_zone,
        currency=segment.currency,
        shop=segment.shop,
        tier=segment.tier,
        cohort_start=period.instant(cohort) if cohort else None,
        cohort_end=period.instant(month_after(cohort)) if cohort else None,
        churn_after=timedelta(days=query.churn_after_days),
        attribution=timedelta(days=query.attribution_days),
    )


async def build_report(
    conn: Connection,
    schema: str,
    query: ReportQuery,
    *,
    point_value: Decimal | None,
    now: datetime,
) -> Report:
    """Every figure, read in one repeatable-read transaction so that they agree."""
    scope = scope_of(schema, query)
    period = Period(query.start, query.end, query.time_zone)
    units = minor_units(query.segment.currency)
    async with conn.transaction(isolation="repeatable_read"):
        scope = await customers.create_held(conn, scope)
        await customers.create_population(conn, scope)
        retention = retention_of(await customers.read_retention(conn, scope), units)
        purchases = purchases_of(await customers.read_purchases(conn, scope), units)
        values = [value_of(r, period.days, units) for r in await customers.read_value(conn, scope)]
        programme = programme_of(await activity.read_programme(conn, scope), point_value, units)
        messages = messages_of(
            await activity.read_message_outcomes(conn, scope),
            await activity.read_conversions(conn, scope),
            units,
        )
        cohorts = cohorts_of(await activity.read_cohorts(conn, scope), period)
        ends = period.month_ends()
        tiers = tiers_of(await activity.read_tiers_by_month(conn, scope, ends), period)
        points = [
            PointsMonth(month=_month(r["month"]), **_ints(r, "issued", "redeemed", "expired"))
            for r in await activity.read_points_by_month(conn, scope)
        ]
    return Report(
        query=query,
        generated_at=now,
        retention=retention,
        purchases=purchases,
        value=values[0],
        value_by_tier=values[1:],
        programme=programme,
        messages=messages,
        cohorts=cohorts,
        tiers_by_month=tiers,
        points_by_month=points,
    )


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _ints(row: asyncpg.Record, *names: str) -> dict[str, Any]:
    return {name: int(row[name]) for name in names}


def _money(amount: Decimal, units: int) -> Decimal:
    rounded = f.money(amount, units)
    assert rounded is not None
    return rounded


def retention_of(row: asyncpg.Record, units: int) -> Retention:
    at_start, at_end, new, churned = (int(row[k]) for k in ("at_start", "at_end", "new", "churned"))
    return Retention(
        customers_at_start=at_start,
        customers_at_end=at_end,
        new_customers=new,
        retention_rate=f.retention_rate(at_start, at_end, new),
        churned=churned,
        churn_rate=f.rate(churned, at_start),
        churned_value=_money(Decimal(row["churned_value"]), units),
    )


def purchases_of(row: asyncpg.Record, units: int) -> Purchases:
    orders, revenue = int(row["orders"]), Decimal(row["revenue"])
    purchasing, returning = int(row["purchasing"]), int(row["returning"])
    returning_orders = int(row["returning_orders"])
    returning_revenue = Decimal(row["returning_revenue"])

    def group(customers: int, group_orders: int, group_revenue: Decimal) -> CustomerGroup:
        return CustomerGroup(
            customers=customers,
            orders=group_orders,
            revenue=_money(group_revenue, units),
            order_share=f.rate(group_orders, orders),
            revenue_share=f.rate(group_revenue, revenue),
        )

    return Purchases(
        orders=orders,
        revenue=_money(revenue, units),
        purchasing_customers=purchasing,
        repeat_customers=int(row["repeating"]),
        repeat_purchase_rate=f.rate(int(row["repeating"]), purchasing),
        returning=group(returning, returning_orders, returning_revenue),
        new=group(purchasing - returning, orders - returning_orders, revenue - returning_revenue),
    )


def value_of(row: asyncpg.Record, period_days: int, units: int) -> Value:
    customers_, orders = int(row["customers"]), int(row["orders"])
    revenue = Decimal(row["revenue"])
    aov = f.average_order_value(revenue, orders)
    frequency = f.purchase_frequency(orders, customers_)
    value = f.customer_value(aov, frequency)
    yearly = f.per_year(value, period_days)
    days = row["lifespan_days"]
    lifespan = f.years(None if days is None else Decimal(days))
    return Value(
        tier=row["tier"],
        customers=customers_,
        orders=orders,
        revenue=_money(revenue, units),
        average_order_value=f.money(aov, units),
        purchase_frequency=None if frequency is None else round(frequency, 4),
        customer_value=f.money(value, units),
        customer_value_per_year=f.money(yearly, units),
        average_lifespan_years=None if lifespan is None else round(lifespan, 4),
        lifetime_value=f.money(f.lifetime_value(yearly, lifespan), units),
    )


def programme_of(row: asyncpg.Record, point_value: Decimal | None, units: int) -> Programme:
    ints = _ints(row, "customers", "members", "issued", "redeemed", "expired", "reversed")
    outstanding = int(row["outstanding"])
    liability = None if point_value is None else f.money(outstanding * point_value, units)
    return Programme(
        customers=ints["customers"],
        members=ints["members"],
        adoption_rate=f.adoption_rate(ints["members"], ints["customers"]),
        points_issued=ints["issued"],
        points_redeemed=ints["redeemed"],
        points_expired=ints["expired"],
        points_reversed=ints["reversed"],
        redemption_rate=f.redemption_rate(ints["redeemed"], ints["issued"]),
        breakage_rate=f.breakage_rate(ints["expired"], ints["issued"]),
        outstanding_points=outstanding,
        point_value=point_value,
        liability_value=liability,
    )


def messages_of(
    outcomes: list[asyncpg.Record], conversions: list[asyncpg.Record], units: int
) -> list[TriggerMessages]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reasons: dict[str, dict[str, int]] = defaultdict(dict)
    for r in outcomes:
        counts[r["trigger"]][r["outcome"]] += int(r["messages"])
        if r["outcome"] == "suppressed":
            reasons[r["trigger"]][r["reason"] or "unknown"] = int(r["messages"])
    converted = {r["trigger"]: r for r in conversions}
    result = []
    for trigger in sorted(counts.keys() | converted.keys()):
        c, conv = counts[trigger], converted.get(trigger)
        done = int(conv["converted"]) if conv else 0
        result.append(
            TriggerMessages(
                trigger=trigger,
                sent=c["sent"],
                failed=c["failed"],
                suppressed=c["suppressed"],
                suppressed_by_reason=dict(sorted(reasons[trigger].items())),
                converted=done,
                conversion_rate=f.rate(done, c["sent"]),
                attributed_orders=int(conv["orders"]) if conv else 0,
                attributed_revenue=_money(Decimal(conv["revenue"] if conv else 0), units),
            )
        )
    return result


def cohorts_of(rows: list[asyncpg.Record], period: Period) -> list[Cohort]:
    sizes = {r["cohort"]: int(r["customers"]) for r in rows if r["month"] is None}
    ordering: dict[date, dict[int, int]] = defaultdict(dict)
    for r in rows:
        if r["month"] is not None:
            ordering[r["cohort"]][months_between(r["cohort"], r["month"])] = int(r["customers"])
    last = period.months()[-1]
    cohorts = []
    for month in sorted(sizes):
        span = range(months_between(month, last) + 1)
        counts = [ordering[month].get(k, 0) for k in span]
        cohorts.append(
            Cohort(
                month=_month(month),
                customers=sizes[month],
                ordering=counts,
                retention=[f.rate(n, sizes[month]) for n in counts],
            )
        )
    return cohorts


def tiers_of(rows: list[asyncpg.Record], period: Period) -> list[TierMonth]:
    by_end: dict[datetime, dict[str | None, int]] = defaultdict(dict)
    for r in rows:
        by_end[r["month_end"]][r["tier"]] = int(r["customers"])
    result = []
    for month, end in zip(period.months(), period.month_ends(), strict=True):
        found = by_end.get(end, {})
        total = found.pop(None, 0)
        tiers = {str(tier): n for tier, n in sorted(found.items(), key=lambda kv: str(kv[0]))}
        tiers["none"] = total - sum(tiers.values())
        result.append(TierMonth(month=_month(month), customers=tiers))
    return result

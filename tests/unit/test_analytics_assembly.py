"""The report assembled from query rows, as worked out by hand; and the pages drawn from it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import asyncpg

from services.analytics import building as b
from services.analytics.domain.period import Period
from services.analytics.rendering import charts
from services.analytics.rendering.page import render_html
from services.analytics.rendering.sections import render_text
from services.analytics.report import (
    PointsMonth,
    Report,
    ReportQuery,
    Segment,
    TierMonth,
)

PERIOD = Period(date(2025, 1, 1), date(2025, 4, 1), "UTC")


def record(columns: dict[str, Any]) -> asyncpg.Record:
    """A query row as the building functions read it: its values by column name."""
    return cast("asyncpg.Record", columns)


def test_retention_figures_from_the_counts() -> None:
    row = record(
        {"at_start": 200, "at_end": 180, "new": 40, "churned": 60, "churned_value": Decimal(9)}
    )
    retention = b.retention_of(row, 0)
    assert retention.retention_rate == Decimal("70.00")
    assert retention.churn_rate == Decimal("30.00")
    assert retention.churned_value == Decimal(9)


def test_returning_and_new_customers_split_the_orders_and_revenue() -> None:
    # 10 orders for 1,000,000 from 4 customers (2 repeat); 3 returning customers made 6
    # orders for 750,000, so the one new customer made 4 for 250,000.
    row = record(
        {
            "orders": 10,
            "revenue": Decimal(1_000_000),
            "purchasing": 4,
            "repeating": 2,
            "returning": 3,
            "returning_orders": 6,
            "returning_revenue": Decimal(750_000),
        }
    )
    purchases = b.purchases_of(row, 0)
    assert purchases.repeat_purchase_rate == Decimal("50.00")
    assert purchases.returning.revenue_share == Decimal("75.00")
    assert purchases.returning.order_share == Decimal("60.00")
    assert (purchases.new.customers, purchases.new.orders) == (1, 4)
    assert purchases.new.revenue == Decimal(250_000)
    assert purchases.new.revenue_share == Decimal("25.00")


def test_value_per_tier_runs_from_aov_to_clv() -> None:
    # 3 customers, 6 orders, 1,800,000 over 90 days: AOV 300,000, frequency 2, customer
    # value 600,000; per year 600,000 x 365.25 / 90 = 2,435,000; lifespan 730.5 days = 2 y.
    row = record(
        {
            "tier": "gold",
            "customers": 3,
            "orders": 6,
            "revenue": Decimal(1_800_000),
            "lifespan_days": Decimal("730.5"),
        }
    )
    value = b.value_of(row, 90, 0)
    assert value.average_order_value == Decimal(300_000)
    assert value.purchase_frequency == Decimal(2)
    assert value.customer_value == Decimal(600_000)
    assert value.customer_value_per_year == Decimal(2_435_000)
    assert value.average_lifespan_years == Decimal(2)
    assert value.lifetime_value == Decimal(4_870_000)


def test_programme_figures_and_the_money_value_of_the_liability() -> None:
    row = record(
        {
            "customers": 10_000,
            "members": 1_000,
            "issued": 10_000,
            "redeemed": 2_500,
            "expired": 1_000,
            "reversed": 200,
            "outstanding": 6_300,
        }
    )
    programme = b.programme_of(row, Decimal(100), 0)
    assert programme.adoption_rate == Decimal("10.00")
    assert programme.redemption_rate == Decimal("25.00")
    assert programme.breakage_rate == Decimal("10.00")
    assert programme.liability_value == Decimal(630_000)


def test_messages_per_trigger_count_outcomes_reasons_and_conversions() -> None:
    outcomes = [
        record({"trigger": "cart.abandoned", "outcome": "sent", "reason": None, "messages": 4}),
        record(
            {
                "trigger": "cart.abandoned",
                "outcome": "suppressed",
                "reason": "ordered",
                "messages": 2,
            }
        ),
        record(
            {
                "trigger": "cart.abandoned",
                "outcome": "suppressed",
                "reason": "no_consent",
                "messages": 1,
            }
        ),
        record(
            {"trigger": "customer.signed_up", "outcome": "failed", "reason": None, "messages": 1}
        ),
    ]
    conversions = [
        record(
            {"trigger": "cart.abandoned", "converted": 3, "orders": 3, "revenue": Decimal(900_000)}
        )
    ]
    carts, welcome = b.messages_of(outcomes, conversions, 0)
    assert (carts.sent, carts.suppressed, carts.converted) == (4, 3, 3)
    assert carts.suppressed_by_reason == {"no_consent": 1, "ordered": 2}
    assert carts.conversion_rate == Decimal("75.00")
    assert carts.attributed_revenue == Decimal(900_000)
    assert (welcome.trigger, welcome.failed, welcome.conversion_rate) == (
        "customer.signed_up",
        1,
        None,
    )


def test_cohorts_give_the_share_ordering_in_each_month_since_acquisition() -> None:
    jan, feb, mar = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)
    rows = [
        record({"cohort": jan, "month": None, "customers": 4}),
        record({"cohort": jan, "month": jan, "customers": 3}),
        record({"cohort": jan, "month": mar, "customers": 1}),
        record({"cohort": feb, "month": None, "customers": 2}),
        record({"cohort": feb, "month": feb, "customers": 2}),
    ]
    january, february = b.cohorts_of(rows, PERIOD)
    assert january.ordering == [3, 0, 1]
    assert january.retention == [Decimal("75.00"), Decimal("0.00"), Decimal("25.00")]
    assert (february.month, february.ordering) == ("2025-02", [2, 0])


def test_customers_without_a_tier_are_counted_as_none() -> None:
    ends = PERIOD.month_ends()
    rows = [
        record({"month_end": ends[0], "tier": None, "customers": 5}),
        record({"month_end": ends[0], "tier": "silver", "customers": 2}),
    ]
    months = b.tiers_of(rows, PERIOD)
    assert months[0].customers == {"silver": 2, "none": 3}
    assert months[1].customers == {"none": 0}


def sample_report() -> Report:
    query = ReportQuery(
        start=PERIOD.start,
        end=PERIOD.end,
        time_zone="UTC",
        segment=Segment(currency="VND"),
        churn_after_days=180,
        attribution_days=7,
    )
    jan = date(2025, 1, 1)
    value_row: dict[str, Any] = {
        "tier": None,
        "customers": 3,
        "orders": 6,
        "revenue": Decimal(1_800_000),
        "lifespan_days": Decimal(100),
    }
    return Report(
        query=query,
        generated_at=datetime(2025, 4, 2, tzinfo=UTC),
        retention=b.retention_of(
            record({"at_start": 2, "at_end": 3, "new": 1, "churned": 0, "churned_value": 0}),
            0,
        ),
        purchases=b.purchases_of(
            record(
                {
                    "orders": 6,
                    "revenue": Decimal(1_800_000),
                    "purchasing": 3,
                    "repeating": 2,
                    "returning": 2,
                    "returning_orders": 5,
                    "returning_revenue": Decimal(1_500_000),
                }
            ),
            0,
        ),
        value=b.value_of(record(value_row), 90, 0),
        value_by_tier=[b.value_of(record({**value_row, "tier": "gold"}), 90, 0)],
        programme=b.programme_of(
            record(
                {
                    "customers": 3,
                    "members": 2,
                    "issued": 900,
                    "redeemed": 100,
                    "expired": 50,
                    "reversed": 0,
                    "outstanding": 750,
                }
            ),
            Decimal(100),
            0,
        ),
        messages=b.messages_of(
            [
                record(
                    {"trigger": "cart.abandoned", "outcome": "sent", "reason": None, "messages": 2}
                )
            ],
            [
                record(
                    {"trigger": "cart.abandoned", "converted": 1, "orders": 1, "revenue": 300_000}
                )
            ],
            0,
        ),
        cohorts=b.cohorts_of(
            [
                record({"cohort": jan, "month": None, "customers": 2}),
                record({"cohort": jan, "month": jan, "customers": 2}),
            ],
            PERIOD,
        ),
        tiers_by_month=[TierMonth(month="2025-01", customers={"gold": 1, "none": 2})],
        points_by_month=[PointsMonth(month="2025-01", issued=900, redeemed=100, expired=50)],
    )


def test_the_page_stands_alone_with_its_four_charts() -> None:
    page = render_html(sample_report())
    assert page.count("<svg ") == 4
    assert "<script" not in page
    # Nothing is fetched: the only URL is the SVG namespace.
    assert set(re.findall(r"https?://[^\"' )]+", page)) == {"http://www.w3.org/2000/svg"}
    for colour in (charts.ISSUED, charts.REDEEMED, charts.EXPIRED, charts.SENT, charts.CONVERTED):
        assert f'fill="{colour}"' in page
    assert "1/2 (50.00%)" in page


def test_the_heat_map_runs_from_pale_to_deep_blue() -> None:
    assert charts.heat_colour(Decimal(0)) == "#eff6ff"
    assert charts.heat_colour(Decimal(100)) == "#1d4ed8"
    assert charts.heat_colour(None) == "#f1f5f9"


def test_the_text_report_prints_every_table() -> None:
    text = render_text(sample_report())
    for title in ("Headline", "Customer value by tier", "Messages", "Monthly cohorts", "Points"):
        assert title in text
    assert "Customer retention rate (E - N) / S               100.00%" in text
    assert "2025-01  2          100.00%  0.00%  0.00%" in text

"""The report: every figure of one period and segment, as the HTTP API, the CLI and the HTML
file give it. Rates are percentages; money is in the report's currency; None means "no value"
(a zero denominator)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class Figures(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Segment(Figures):
    """Which customers and orders count: all of them unless narrowed."""

    shop: str | None = Field(
        default=None,
        description="This shop's customers and their facts at it (none: every shop's, a customer"
        " id at two shops being two customers); a coalition: its members' customers, each once.",
    )
    tier: str | None = Field(
        default=None, description="Customers in this tier at the period's end ('none': no tier)."
    )
    cohort: str | None = Field(
        default=None, description="Customers acquired in this month, as YYYY-MM."
    )
    currency: str = Field(description="Orders in this currency; every money figure is in it.")


class ReportQuery(Figures):
    start: date = Field(description="First day of the period (local day).")
    end: date = Field(description="Day after the period's last (exclusive).")
    time_zone: str
    segment: Segment
    churn_after_days: int
    attribution_days: int


class Retention(Figures):
    customers_at_start: int = Field(description="S: customers at the period's start.")
    customers_at_end: int = Field(description="E: customers at the period's end.")
    new_customers: int = Field(description="N: customers acquired during the period.")
    retention_rate: Decimal | None = Field(description="(E - N) / S x 100.")
    churned: int = Field(description="Customers at the start who are no longer at the end.")
    churn_rate: Decimal | None = Field(description="churned / S x 100.")
    churned_value: Decimal = Field(
        description="What the churned customers spent in the 365 days before the period."
    )


class CustomerGroup(Figures):
    customers: int
    orders: int
    revenue: Decimal
    order_share: Decimal | None
    revenue_share: Decimal | None


class Purchases(Figures):
    orders: int
    revenue: Decimal
    purchasing_customers: int
    repeat_customers: int = Field(description="Customers with two orders or more in the period.")
    repeat_purchase_rate: Decimal | None
    returning: CustomerGroup = Field(description="Customers whose first order was before.")
    new: CustomerGroup = Field(description="Customers whose first order is in the period.")


class Value(Figures):
    tier: str | None = Field(description="None for all tiers together.")
    customers: int = Field(description="Customers with an order in the period.")
    orders: int
    revenue: Decimal
    average_order_value: Decimal | None
    purchase_frequency: Decimal | None
    customer_value: Decimal | None = Field(description="AOV x purchase frequency, over the period.")
    customer_value_per_year: Decimal | None
    average_lifespan_years: Decimal | None
    lifetime_value: Decimal | None = Field(description="Customer value per year x lifespan.")


class Programme(Figures):
    customers: int = Field(description="Customers acquired before the period's end.")
    members: int = Field(description="Of those, customers in the programme by then.")
    adoption_rate: Decimal | None
    points_issued: int
    points_redeemed: int
    points_expired: int
    points_reversed: int
    redemption_rate: Decimal | None
    breakage_rate: Decimal | None
    outstanding_points: int = Field(description="The points liability at the period's end.")
    point_value: Decimal | None
    liability_value: Decimal | None


class TriggerMessages(Figures):
    trigger: str
    sent: int
    failed: int
    suppressed: int
    suppressed_by_reason: dict[str, int]
    converted: int = Field(description="Messages sent followed by an order within the window.")
    conversion_rate: Decimal | None
    attributed_orders: int = Field(description="Orders whose last message before was this one.")
    attributed_revenue: Decimal


class Cohort(Figures):
    month: str = Field(description="YYYY-MM of acquisition.")
    customers: int
    ordering: list[int] = Field(description="Customers with an order in month 0, 1, 2...")
    retention: list[Decimal | None] = Field(description="ordering / customers x 100.")


class TierMonth(Figures):
    month: str
    customers: dict[str, int] = Field(description="Customers per tier at the month's end.")


class PointsMonth(Figures):
    month: str
    issued: int
    redeemed: int
    expired: int


class Report(Figures):
    query: ReportQuery
    generated_at: datetime
    retention: Retention
    purchases: Purchases
    value: Value
    value_by_tier: list[Value]
    programme: Programme
    messages: list[TriggerMessages]
    cohorts: list[Cohort]
    tiers_by_month: list[TierMonth]
    points_by_month: list[PointsMonth]

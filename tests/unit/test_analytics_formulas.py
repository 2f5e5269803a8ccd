"""The analytics formulas, each against a vector worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.analytics.domain import formulas as f
from services.analytics.domain.facts import (
    CustomerFact,
    CustomerKey,
    merge_customer,
    merge_joined,
)
from services.analytics.domain.period import Period, month_after, months_between


def test_adoption_rate_of_1000_members_among_10000_customers_is_10_percent() -> None:
    assert f.adoption_rate(1_000, 10_000) == Decimal("10.00")


def test_retention_rate_leaves_out_the_customers_acquired_during_the_period() -> None:
    # S = 200 at the start, E = 180 at the end of whom N = 40 are new: (180 - 40) / 200 = 70%.
    assert f.retention_rate(at_start=200, at_end=180, new=40) == Decimal("70.00")


def test_retention_rate_has_no_value_without_customers_at_the_start() -> None:
    assert f.retention_rate(at_start=0, at_end=12, new=12) is None


def test_churn_share_is_the_lost_customers_over_those_at_the_start() -> None:
    assert f.rate(30, 200) == Decimal("15.00")


def test_rates_round_half_to_even_at_two_decimals() -> None:
    assert f.rate(1, 3) == Decimal("33.33")
    assert f.rate(2, 3) == Decimal("66.67")
    assert f.rate(1, 8) == Decimal("12.50")


def test_average_order_value_is_revenue_over_orders() -> None:
    assert f.average_order_value(Decimal(1_250_000), 5) == Decimal(250_000)
    assert f.average_order_value(Decimal(0), 0) is None


def test_purchase_frequency_is_orders_over_customers_who_ordered() -> None:
    assert f.purchase_frequency(5, 2) == Decimal("2.5")
    assert f.purchase_frequency(0, 0) is None


def test_customer_value_is_aov_times_frequency() -> None:
    assert f.customer_value(Decimal(250_000), Decimal("2.5")) == Decimal(625_000)
    assert f.customer_value(None, Decimal(2)) is None


def test_a_value_over_30_days_scales_to_a_year_of_365_25_days() -> None:
    assert f.per_year(Decimal(100), 30) == Decimal("1217.5")


def test_lifetime_value_is_yearly_customer_value_times_lifespan_in_years() -> None:
    lifespan = f.years(Decimal("913.125"))  # 2.5 years of 365.25 days
    assert lifespan == Decimal("2.5")
    assert f.lifetime_value(Decimal(1_000_000), lifespan) == Decimal(2_500_000)
    assert f.lifetime_value(Decimal(1_000_000), None) is None


def test_redemption_rate_and_breakage_are_shares_of_the_points_issued() -> None:
    assert f.redemption_rate(2_500, 10_000) == Decimal("25.00")
    assert f.breakage_rate(1_000, 10_000) == Decimal("10.00")
    assert f.redemption_rate(5, 0) is None


def test_money_is_rounded_to_the_currency_minor_units() -> None:
    assert f.money(Decimal("1234.565"), 2) == Decimal("1234.56")
    assert f.money(Decimal("1234.575"), 2) == Decimal("1234.58")
    assert f.money(Decimal("259000.6"), 0) == Decimal(259001)


def test_a_period_knows_its_months_and_cuts_the_last_at_its_end() -> None:
    period = Period(date(2025, 1, 15), date(2025, 3, 10), "Asia/Ho_Chi_Minh")
    assert period.days == 54
    assert period.months() == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    assert period.month_ends() == [
        datetime(2025, 2, 1, tzinfo=zone),
        datetime(2025, 3, 1, tzinfo=zone),
        datetime(2025, 3, 10, tzinfo=zone),
    ]
    # Midnight in Ho Chi Minh City is 17:00 UTC the day before.
    assert period.starts_at == datetime(2025, 1, 14, 17, tzinfo=UTC)


def test_a_period_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="end after"):
        Period(date(2025, 3, 1), date(2025, 3, 1), "UTC")


def test_months_roll_over_the_year() -> None:
    assert month_after(date(2024, 12, 31)) == date(2025, 1, 1)
    assert months_between(date(2024, 11, 1), date(2025, 2, 1)) == 3


def test_a_customer_is_acquired_at_each_shop_at_their_earliest_sighting_there() -> None:
    paid_a, signed_a = datetime(2025, 1, 3, tzinfo=UTC), datetime(2025, 1, 5, tzinfo=UTC)
    paid_b = datetime(2025, 1, 4, tzinfo=UTC)
    facts: dict[CustomerKey, CustomerFact] = {}
    merge_customer(facts, CustomerFact("c-1", "shop-a", signed_up_at=signed_a))
    merge_customer(facts, CustomerFact("c-1", "shop-b", first_paid_at=paid_b))
    merge_customer(facts, CustomerFact("c-1", "shop-a", first_paid_at=signed_a))
    merge_customer(facts, CustomerFact("c-1", "shop-a", first_paid_at=paid_a))

    found = {key: (f.signed_up_at, f.first_paid_at) for key, f in facts.items()}
    assert found == {("shop-a", "c-1"): (signed_a, paid_a), ("shop-b", "c-1"): (None, paid_b)}


def test_a_member_joins_at_the_first_programme_event() -> None:
    joined: dict[CustomerKey, datetime] = {}
    merge_joined(joined, ("shop-a", "c-1"), datetime(2025, 2, 1, tzinfo=UTC))
    merge_joined(joined, ("shop-b", "c-1"), datetime(2025, 3, 1, tzinfo=UTC))
    merge_joined(joined, ("shop-a", "c-1"), datetime(2025, 1, 1, tzinfo=UTC))
    assert joined == {
        ("shop-a", "c-1"): datetime(2025, 1, 1, tzinfo=UTC),
        ("shop-b", "c-1"): datetime(2025, 3, 1, tzinfo=UTC),
    }

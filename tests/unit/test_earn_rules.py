"""Earning rules with worked examples: base rate and rounding, exclusions, product rules, tier
multipliers, campaigns and their caps, cashback, punch cards, memberships, return windows and
reversals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.earn.domain.orders import (
    MembershipSale,
    capped,
    earning_of,
    first_release,
    membership_ends,
    membership_refund,
    release_after_completion,
    reversal_target,
    units_by_sku,
    units_points,
)
from services.earn.programme import Programme, Rate, parse_programme
from shared.events import OrderPaid
from shared.events.inputs import RefundedItem

# Wednesday 2026-12-02 10:00 in Ho Chi Minh City (UTC+7).
PAID = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
VND = Rate(per_amount=Decimal(10_000), points=1)
USD = Rate(per_amount=Decimal(1), points=1)


def programme(**sections: Any) -> Programme:
    raw: dict[str, Any] = {
        "time_zone": "Asia/Ho_Chi_Minh",
        "currencies": {
            "VND": {"per_amount": Decimal(10_000), "points": 1},
            "USD": {"per_amount": Decimal(1), "points": 1},
        },
    }
    return parse_programme(raw | sections)


def order(
    *lines: tuple[str, str, str, int],
    currency: str = "VND",
    shipping: str | None = None,
    tax: str | None = None,
    discount: str = "0",
    tax_included: bool = False,
) -> OrderPaid:
    """Lines are (sku, category, unit price, quantity); totals follow from them."""
    subtotal = sum(Decimal(price) * qty for _, _, price, qty in lines)
    total = subtotal - Decimal(discount) + Decimal(shipping or 0)
    if not tax_included:
        total += Decimal(tax or 0)
    totals: dict[str, Any] = {"total": {"amount": str(total), "currency": currency}}
    if shipping is not None or tax is not None:
        totals |= {
            "subtotal": {"amount": str(subtotal), "currency": currency},
            "discount": {"amount": discount, "currency": currency},
            "shipping": {"amount": shipping or "0", "currency": currency},
            "tax": {"amount": tax or "0", "currency": currency},
            "tax_included": tax_included,
        }
    return OrderPaid.model_validate(
        {
            "order_id": "o-1",
            "customer_id": "c-1",
            "currency": currency,
            "items": [
                {"sku": sku, "name": sku, "category": cat, "quantity": qty, "unit_price": price}
                for sku, cat, price, qty in lines
            ],
            "totals": totals,
        }
    )


def earned(p: Programme, o: OrderPaid, *, at: datetime = PAID, multiplier: str = "1") -> Any:
    result = earning_of(o, at, p, Decimal(multiplier))
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("amount", "rate", "points"),
    [
        ("259000", VND, 25),  # 25.9 units: only whole units earn
        ("9999", VND, 0),
        ("10000", VND, 1),
        ("19.99", USD, 19),
        ("0", USD, 0),
        ("-5", USD, 0),
        ("100", Rate(per_amount=Decimal(10), points=3), 30),
        ("0.99", Rate(per_amount=Decimal("0.5"), points=2), 2),
    ],
)
def test_points_are_whole_units_of_the_rate_rounded_down(
    amount: str, rate: Rate, points: int
) -> None:
    assert units_points(Decimal(amount), rate) == points


@given(
    a=st.decimals(min_value=0, max_value=10**9, places=2),
    b=st.decimals(min_value=0, max_value=10**9, places=2),
)
def test_paying_more_never_earns_fewer_points(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert 0 <= units_points(low, USD) <= units_points(high, USD)


def test_shipping_and_tax_earn_nothing_unless_included() -> None:
    # 500,000 of goods, 30,000 shipping, 50,000 tax: 580,000 paid.
    o = order(("tee", "apparel", "500000", 1), shipping="30000", tax="50000")

    assert earned(programme(), o).base_points == 50
    with_all = programme(earning_base={"include_shipping": True, "include_tax": True})
    assert earned(with_all, o).base_points == 58
    assert earned(programme(earning_base={"include_shipping": True}), o).base_points == 53


def test_tax_included_in_prices_is_taken_out_too() -> None:
    # Prices of 550,000 include 50,000 tax: the base is 500,000.
    o = order(("tee", "apparel", "550000", 1), tax="50000", tax_included=True, shipping="0")

    assert earned(programme(), o).base_points == 50


def test_discounts_reduce_the_base() -> None:
    o = order(("tee", "apparel", "500000", 1), discount="100000", shipping="0")

    assert earned(programme(), o).base_points == 40


def test_product_rules_weight_lines_and_a_sku_rule_wins_over_its_category() -> None:
    p = programme(
        products=[
            {"categories": ["gift-cards"], "multiplier": 0},
            {"categories": ["beauty"], "multiplier": 2},
            {"skus": ["lipstick-sale"], "multiplier": 1},
        ]
    )
    o = order(
        ("card", "gift-cards", "500000", 1),  # excluded: 0
        ("serum", "beauty", "300000", 1),  # doubled: 60 units
        ("lipstick-sale", "beauty", "200000", 1),  # the SKU rule: 20 units
    )

    assert earned(p, o).base_points == 80


def test_discount_is_shared_by_the_lines_pro_rata() -> None:
    p = programme(products=[{"categories": ["gift-cards"], "multiplier": 0}])
    # 1,000,000 of lines, half a gift card; a 200,000 discount leaves 800,000, 400,000 each.
    o = order(
        ("card", "gift-cards", "500000", 1),
        ("tee", "apparel", "500000", 1),
        discount="200000",
        shipping="0",
    )

    assert earned(p, o).base_points == 40


@pytest.mark.parametrize(
    ("amount", "multiplier", "points"),
    [
        ("259000", "1", 25),
        ("259000", "1.25", 31),  # 25 base points x 1.25 = 31.25
        ("10000", "1.5", 1),  # 1.5
        ("20000", "1.5", 3),
        ("9999", "3", 0),  # no base points, nothing to multiply
    ],
)
def test_tier_multiplier_applies_to_the_base_points_then_rounds_down(
    amount: str, multiplier: str, points: int
) -> None:
    o = order(("tee", "apparel", amount, 1))

    assert earned(programme(), o, multiplier=multiplier).tier_points == points


def test_an_order_in_a_currency_without_a_rate_earns_nothing_it_is_refused() -> None:
    o = order(("tee", "apparel", "10", 1), currency="EUR")

    assert earning_of(o, PAID, programme(), Decimal(1)) is None


DOUBLE_DAYS = {
    "code": "double-days",
    "name": "Double points on weekday mornings",
    "starts_at": datetime(2026, 12, 1, tzinfo=UTC),
    "ends_at": datetime(2026, 12, 31, tzinfo=UTC),
    "weekdays": [1, 2, 3, 4, 5],
    "hours": ["08:00", "12:00"],
    "multiplier": Decimal(2),
}


def test_a_multiplier_campaign_adds_its_bonus_within_its_local_days_and_hours() -> None:
    p = programme(campaigns=[DOUBLE_DAYS])
    o = order(("tee", "apparel", "500000", 1))

    [bonus] = earned(p, o).bonuses  # Wednesday 10:00 local
    assert bonus.points == 50
    assert earned(p, o, at=PAID + timedelta(hours=3)).bonuses == []  # 13:00 local
    saturday = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    assert earned(p, o, at=saturday).bonuses == []
    assert earned(p, o, at=datetime(2027, 1, 6, 3, 0, tzinfo=UTC)).bonuses == []  # ended


def test_campaign_hours_across_midnight() -> None:
    night = DOUBLE_DAYS | {"weekdays": None, "hours": ["22:00", "02:00"]}
    p = programme(campaigns=[night])
    o = order(("tee", "apparel", "100000", 1))

    at_23 = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # 23:00 local
    at_01 = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # 01:00 local
    at_03 = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)  # 03:00 local
    assert [b.points for b in earned(p, o, at=at_23).bonuses] == [10]
    assert [b.points for b in earned(p, o, at=at_01).bonuses] == [10]
    assert earned(p, o, at=at_03).bonuses == []


def test_a_category_campaign_counts_only_its_lines_and_its_minimum() -> None:
    beauty = {
        "code": "beauty-bonus",
        "name": "Beauty week",
        "starts_at": datetime(2026, 12, 1, tzinfo=UTC),
        "ends_at": datetime(2026, 12, 8, tzinfo=UTC),
        "categories": ["beauty"],
        "multiplier": Decimal(3),
        "min_amount": {"VND": Decimal(200_000)},
    }
    p = programme(campaigns=[beauty])

    mixed = order(("serum", "beauty", "300000", 1), ("tee", "apparel", "500000", 1))
    assert [b.points for b in earned(p, mixed).bonuses] == [60]  # 30 base x (3 - 1)
    small = order(("balm", "beauty", "150000", 1), ("tee", "apparel", "500000", 1))
    assert earned(p, small).bonuses == []


def test_a_fixed_bonus_campaign() -> None:
    fixed = DOUBLE_DAYS | {"multiplier": None, "bonus_points": 100}
    p = programme(campaigns=[fixed])

    assert [b.points for b in earned(p, order(("tee", "apparel", "10000", 1))).bonuses] == [100]


@pytest.mark.parametrize(
    ("bonus", "mine", "everyone", "per_customer", "total", "granted"),
    [
        (50, 0, 0, None, None, 50),
        (50, 80, 0, 100, None, 20),  # 20 left for this customer
        (50, 0, 990, None, 1000, 10),  # 10 left in all
        (50, 100, 0, 100, None, 0),
        (50, 0, 1200, 100, 1000, 0),
    ],
)
def test_campaign_caps_per_customer_and_in_all(
    bonus: int, mine: int, everyone: int, per_customer: int | None, total: int | None, granted: int
) -> None:
    campaign = programme(
        campaigns=[DOUBLE_DAYS | {"per_customer_cap": per_customer, "total_cap": total}]
    ).campaigns[0]

    assert capped(bonus, mine, everyone, campaign) == granted


def test_cashback_is_store_credit_in_minor_units_rounded_down() -> None:
    p = programme(cashback={"percent": {"USD": Decimal("2.5"), "VND": Decimal(1)}})

    usd = order(("mug", "home", "39.99", 1), currency="USD")
    assert earned(p, usd).credit_minor == 99  # 2.5% of 39.99 = 0.99975 USD -> 99 cents
    assert earned(p, order(("tee", "apparel", "259000", 1))).credit_minor == 2590


PUNCH = {
    "code": "coffee",
    "name": "Tenth coffee free",
    "every": 10,
    "categories": ["coffee"],
    "min_amount": {"VND": Decimal(40_000), "USD": Decimal(3)},
    "reward_points": 45,
}


def test_a_punch_needs_the_minimum_amount_of_qualifying_lines() -> None:
    p = programme(punch_cards=[PUNCH])

    assert [c.code for c in earned(p, order(("latte", "coffee", "45000", 1))).punch_cards] == [
        "coffee"
    ]
    split = order(("latte-sip", "coffee", "15000", 1), ("cake", "bakery", "60000", 1))
    assert earned(p, split).punch_cards == []


def test_a_membership_sku_is_announced_with_its_tier_and_period() -> None:
    p = programme(memberships=[{"sku": "vip-year", "tier": "gold", "months": 12}])

    assert earned(p, order(("vip-year", "membership", "990000", 1))).memberships == [
        MembershipSale("vip-year", "gold", 12, 1)
    ]
    assert membership_ends(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(
        2026, 2, 28, tzinfo=UTC
    )


def test_several_units_of_a_membership_sku_buy_one_membership_that_knows_them_all() -> None:
    p = programme(memberships=[{"sku": "vip-year", "tier": "gold", "months": 12}])
    bought = order(
        ("vip-year", "membership", "990000", 2),
        ("tee", "apparel", "200000", 1),
        ("vip-year", "membership", "990000", 1),
    )

    assert earned(p, bought).memberships == [MembershipSale("vip-year", "gold", 12, 3)]


def test_refunded_units_are_counted_by_sku() -> None:
    items = [RefundedItem(sku="vip-year", quantity=1), RefundedItem(sku="tee", quantity=2)]
    items.append(RefundedItem(sku="vip-year", quantity=2))

    assert units_by_sku(items) == {"vip-year": 3, "tee": 2}
    assert units_by_sku([]) == {}


def test_a_membership_ends_only_when_every_unit_bought_is_refunded() -> None:
    assert membership_refund(1, 0, 1) == (1, True)
    assert membership_refund(3, 0, 2) == (2, False)  # one unit kept: the membership stays
    assert membership_refund(3, 2, 1) == (3, True)  # the earlier refund counts
    assert membership_refund(2, 0, 5) == (2, True)  # never more than were bought


@given(
    bought=st.integers(min_value=1, max_value=20),
    refunds=st.lists(st.integers(min_value=1, max_value=20), max_size=10),
)
def test_refunds_end_a_membership_once_they_add_up_to_the_units_bought(
    bought: int, refunds: list[int]
) -> None:
    refunded, ended = 0, []
    for units in refunds:
        refunded, every_unit = membership_refund(bought, refunded, units)
        ended.append(every_unit)

    assert refunded == min(bought, sum(refunds))
    assert any(ended) == (sum(refunds) >= bought)
    assert ended == sorted(ended)  # once every unit is back, it stays back


def test_points_wait_for_the_return_window_after_completion_or_the_timeout() -> None:
    p = programme(pending={"return_window_days": 14, "completion_timeout_days": 30})

    first = first_release(PAID, p)
    assert first == PAID + timedelta(days=44)
    completed = PAID + timedelta(days=3)
    assert release_after_completion(first, completed, p) == PAID + timedelta(days=17)
    assert first_release(PAID, programme()) == PAID  # no window: available at payment


@pytest.mark.parametrize(
    ("points", "paid", "refunded", "full", "target"),
    [
        (100, "1000", "250", False, 25),
        (100, "1000", "333", False, 33),  # 33.3 rounds down
        (100, "1000", "999", False, 99),
        (100, "1000", "1000", False, 100),  # refunds adding up to the total take back all
        (100, "1000", "10", True, 100),  # a full refund takes back all whatever it states
        (7, "3", "1", False, 2),
    ],
)
def test_reversal_is_the_refunded_share_rounded_down(
    points: int, paid: str, refunded: str, full: bool, target: int
) -> None:
    assert reversal_target(points, Decimal(paid), Decimal(refunded), full=full) == target


@given(
    points=st.integers(min_value=0, max_value=10**6),
    parts=st.lists(st.integers(min_value=1, max_value=10**4), min_size=1, max_size=8),
)
def test_partial_refunds_never_take_more_than_earned_and_all_of_them_take_all(
    points: int, parts: list[int]
) -> None:
    total = Decimal(sum(parts))
    refunded = Decimal(0)
    taken = 0
    for part in parts:
        refunded += part
        target = reversal_target(points, total, refunded, full=False)
        assert taken <= target <= points  # never gives back what an earlier refund took
        taken = target
    assert taken == points


def test_points_past_the_ledger_range_are_refused_and_others_counted() -> None:
    from services.earn.domain.orders import LEDGER_MAX, over_ledger_limit  # noqa: PLC0415

    held = {"c-1": LEDGER_MAX - 10}

    assert over_ledger_limit(held, "c-1", 11)
    assert held["c-1"] == LEDGER_MAX - 10
    assert not over_ledger_limit(held, "c-1", 10)
    assert held["c-1"] == LEDGER_MAX
    assert not over_ledger_limit(held, "c-2", 5)
    assert held["c-2"] == 5

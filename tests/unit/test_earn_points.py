"""The base earning rule: whole units of the rate earn, the rest is rounded down."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.earn.domain.points import EarnRate, points_for
from services.earn.settings import EarnSettings

VND = EarnRate(per_amount=Decimal(10_000), points=1)
USD = EarnRate(per_amount=Decimal(1), points=1)


@pytest.mark.parametrize(
    ("amount", "rate", "points"),
    [
        ("259000", VND, 25),
        ("9999", VND, 0),
        ("10000", VND, 1),
        ("19.99", USD, 19),
        ("0", USD, 0),
        ("-5", USD, 0),
        ("100", EarnRate(per_amount=Decimal(10), points=3), 30),
        ("0.99", EarnRate(per_amount=Decimal("0.5"), points=2), 2),
    ],
)
def test_points_are_whole_units_of_the_rate_rounded_down(
    amount: str, rate: EarnRate, points: int
) -> None:
    assert points_for(Decimal(amount), rate) == points


@given(
    a=st.decimals(min_value=0, max_value=10**9, places=2),
    b=st.decimals(min_value=0, max_value=10**9, places=2),
)
def test_paying_more_never_earns_fewer_points(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert 0 <= points_for(low, USD) <= points_for(high, USD)


def test_rates_are_read_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_EARN_RATES", '{"THB": {"per_amount": "25", "points": 1}}')
    assert EarnSettings().earn_rates == {"THB": EarnRate(per_amount=Decimal(25), points=1)}


@pytest.mark.parametrize(
    "bad",
    [
        '{"thb": {"per_amount": "25", "points": 1}}',
        '{"THB": {"per_amount": "0", "points": 1}}',
        '{"THB": {"per_amount": "25", "points": 0}}',
        '{"THB": {"per_amount": "25", "points": 1, "bonus": 2}}',
    ],
)
def test_bad_rates_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("LOYALTY_EARN_RATES", bad)
    with pytest.raises(ValueError, match="earn_rates"):
        EarnSettings()


@pytest.mark.parametrize(
    ("amount", "multiplier", "points"),
    [
        ("259000", "1", 25),
        ("259000", "1.25", 31),  # 25 base points x 1.25 = 31.25
        ("10000", "1.5", 1),  # 1 x 1.5 = 1.5
        ("20000", "1.5", 3),
        ("9999", "3", 0),  # no base points, nothing to multiply
    ],
)
def test_tier_multiplier_applies_to_the_base_points_then_rounds_down(
    amount: str, multiplier: str, points: int
) -> None:
    assert points_for(Decimal(amount), VND, Decimal(multiplier)) == points

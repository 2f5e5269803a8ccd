"""What a redemption costs, when the balance allows it, and the codes it issues."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.earn.domain.money import (
    VOUCHER_ALPHABET,
    Price,
    check_funds,
    price,
    redemption_id,
    voucher_code,
)
from services.earn.programme import Reward
from services.earn.refusals import Conflict, InvalidField
from services.earn.requests import fingerprint
from services.earn.views import AdjustmentRequest, BulkGrantRequest


def reward(**fields: Any) -> Reward:
    base: dict[str, Any] = {"code": "r", "name": "R", "kind": "voucher", "cost_points": 100}
    return Reward.model_validate(base | fields)


VOUCHER = reward(value={"VND": Decimal(50000)})
TWO_CURRENCIES = reward(value={"VND": Decimal(100000), "USD": Decimal("4.00")})
PAY_WITH_POINTS = reward(
    kind="points_as_money", cost_points=10, value={"VND": Decimal(1000), "USD": Decimal("0.05")}
)
SHIPPING = reward(kind="free_shipping", cost_points=50)
GIFT = reward(kind="gift", cost_points=300, sku="TEA-1")


def refusal(call: Any) -> InvalidField:
    with pytest.raises(InvalidField) as raised:
        call()
    return raised.value


def test_a_voucher_costs_its_points_once_in_its_only_currency_by_default() -> None:
    assert price(VOUCHER, currency=None, steps=None, points=None) == Price(
        100, Decimal(50000), "VND"
    )


def test_a_reward_valued_in_several_currencies_needs_one_of_them() -> None:
    missing = refusal(lambda: price(TWO_CURRENCIES, currency=None, steps=None, points=None))
    other = refusal(lambda: price(VOUCHER, currency="USD", steps=None, points=None))

    assert (missing.location, other.location) == ("body.currency", "body.currency")
    assert "USD, VND" in missing.message
    assert price(TWO_CURRENCIES, currency="USD", steps=None, points=None).value == Decimal("4.00")


def test_points_as_money_is_priced_per_step_given_as_steps_or_points() -> None:
    by_steps = price(PAY_WITH_POINTS, currency="VND", steps=7, points=None)
    by_points = price(PAY_WITH_POINTS, currency="USD", steps=None, points=70)

    assert by_steps == Price(70, Decimal(7000), "VND")
    assert by_points == Price(70, Decimal("0.35"), "USD")


@pytest.mark.parametrize(
    ("steps", "points", "location"),
    [
        (None, None, "body.steps"),
        (2, 20, "body.steps"),
        (None, 15, "body.points"),
        (1_000_001, None, "body.steps"),
    ],
)
def test_points_as_money_refuses_what_is_not_a_whole_number_of_steps(
    steps: int | None, points: int | None, location: str
) -> None:
    error = refusal(lambda: price(PAY_WITH_POINTS, currency="VND", steps=steps, points=points))

    assert error.location == location


def test_shipping_and_gifts_have_no_money_value_and_no_steps() -> None:
    assert price(SHIPPING, currency=None, steps=None, points=None) == Price(50, None, None)
    assert price(GIFT, currency=None, steps=None, points=None) == Price(300, None, None)
    assert refusal(lambda: price(GIFT, currency="VND", steps=None, points=None)).location == (
        "body.currency"
    )
    assert refusal(lambda: price(VOUCHER, currency=None, steps=2, points=None)).location == (
        "body.steps"
    )


@pytest.mark.parametrize(
    ("available", "pending", "cost", "code"),
    [
        (99, 0, 100, "insufficient_points"),
        (0, 500, 100, "insufficient_points"),
        (-1, 0, 100, "negative_balance"),
        (-50, 1000, 0, "negative_balance"),
    ],
)
def test_redemptions_are_refused_beyond_the_available_points_or_on_a_negative_balance(
    available: int, pending: int, cost: int, code: str
) -> None:
    with pytest.raises(Conflict) as raised:
        check_funds(available=available, pending=pending, cost=cost)

    assert raised.value.code == code


def test_pending_points_are_named_when_they_would_have_covered_the_cost() -> None:
    with pytest.raises(Conflict, match="500 pending points cannot be spent"):
        check_funds(available=0, pending=500, cost=100)


def test_exactly_the_available_points_can_be_spent() -> None:
    check_funds(available=100, pending=0, cost=100)
    check_funds(available=0, pending=0, cost=0)


def test_voucher_codes_are_16_unambiguous_symbols_and_do_not_repeat() -> None:
    codes = {voucher_code() for _ in range(10_000)}

    assert len(codes) == 10_000
    assert not set(VOUCHER_ALPHABET) & set("01IO")
    assert len(VOUCHER_ALPHABET) == len(set(VOUCHER_ALPHABET)) == 32
    pattern = re.compile(rf"^[{VOUCHER_ALPHABET}]{{4}}(-[{VOUCHER_ALPHABET}]{{4}}){{3}}$")
    assert all(pattern.match(c) for c in codes)
    assert len({redemption_id() for _ in range(1000)}) == 1000


def test_a_fingerprint_ignores_key_order_and_tells_bodies_apart() -> None:
    one = fingerprint({"reward": "a", "customer_id": "c", "steps": None})
    same = fingerprint({"steps": None, "customer_id": "c", "reward": "a"})
    other = fingerprint({"reward": "a", "customer_id": "d", "steps": None})

    assert one == same
    assert one != other


def test_an_adjustment_of_zero_points_is_refused() -> None:
    with pytest.raises(ValidationError, match="must not be 0"):
        AdjustmentRequest.model_validate({"points": 0, "reason": "x"})


def test_a_bulk_grant_gives_each_customer_once() -> None:
    request = BulkGrantRequest.model_validate(
        {
            "batch_id": "b",
            "reason": "x",
            "grants": [{"customer_id": "c", "points": 1}, {"customer_id": "c", "points": 1}],
        }
    )
    refused = refusal(request.check_one_per_customer)
    assert (refused.location, "granted twice" in refused.message) == ("body.grants", True)

"""Sample events of the simulated shops: valid contracts, in each shop's currency."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from services.samples import SampleShop, build, sample_data

US_SHOP = SampleShop("us-shop", "USD", "en-US", "America/New_York", "https://us.example")
EVENT_TYPES = (
    "customer.signed_up",
    "order.paid",
    "order.refunded",
    "cart.abandoned",
    "review.posted",
    "social.shared",
)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_sample_names_its_shop_and_passes_its_contract(event_type: str) -> None:
    data = sample_data(event_type, "c-1", random.Random(7), US_SHOP)

    event = build(event_type, "c-1", data)

    assert event.data.shop_id == "us-shop"


def test_a_usd_shop_prices_in_cents_and_a_vnd_shop_in_whole_dong() -> None:
    rng = random.Random(3)
    us_order = sample_data("order.paid", "c-1", rng, US_SHOP)
    vn_order = sample_data("order.paid", "c-1", rng)

    us_total = Decimal(us_order["totals"]["total"]["amount"])
    vn_total = Decimal(vn_order["totals"]["total"]["amount"])
    assert us_order["currency"] == "USD"
    assert us_total == us_total.quantize(Decimal("0.01"))
    assert Decimal(1) < us_total < Decimal(200)
    assert vn_order["currency"] == "VND"
    assert vn_order["shop_id"] == "default"
    assert vn_total == vn_total.to_integral_value()


def test_a_customer_signs_up_in_the_shops_locale_and_time_zone() -> None:
    data = sample_data("customer.signed_up", "c-1", random.Random(1), US_SHOP)

    assert (data["locale"], data["time_zone"]) == ("en-US", "America/New_York")

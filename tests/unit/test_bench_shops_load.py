"""The earn benchmark's load over many shops: shop ids in the events, each shop's rate in the
expected points, customers at several shops; and the 1-shop load the shop `default`'s."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

from bench import loadgen
from bench.shops import earn_programme
from services.earn.programme import Programme
from services.shops.documents import check_document


def test_each_order_is_expected_at_its_shops_rate() -> None:
    load = loadgen.generate_at_shops(3000, 200, 10, prefix="t")
    assert len(load.records) == 3000
    expected: Counter[tuple[str, str]] = Counter()
    shops_of: dict[str, set[str]] = {}
    for key, value in load.records:
        data = json.loads(value)["data"]
        assert key.decode() == data["customer_id"]
        index = int(data["shop_id"].removeprefix("bench-"))
        per = Decimal(10_000) * (1 + index % 5)
        amount = Decimal(data["totals"]["total"]["amount"])
        expected[data["shop_id"], data["customer_id"]] += int(amount // per)
        shops_of.setdefault(data["customer_id"], set()).add(data["shop_id"])
    assert load.expected_at_shops == expected
    assert {shop for shop, _ in expected} == {f"bench-{i:04d}" for i in range(10)}
    # Every customer buys at a home shop; some at others too.
    assert len(shops_of) == 200
    assert any(len(shops) > 1 for shops in shops_of.values())
    assert all(points > 0 for points in expected.values())


def test_the_one_shop_load_is_the_default_shops() -> None:
    load = loadgen.generate(100, 10, prefix="t")
    assert not load.expected_at_shops
    assert {json.loads(value)["data"]["shop_id"] for _, value in load.records} == {"default"}
    assert sum(load.expected_points.values()) > 0


def test_each_shops_programme_is_earns_example_at_its_rate() -> None:
    for index in (0, 1, 4, 5, 999):
        programme = check_document("earn", earn_programme(index))
        assert isinstance(programme, Programme)
        rate = programme.currencies["VND"]
        assert (rate.per_amount, rate.points) == (10_000 * (1 + index % 5), 1)

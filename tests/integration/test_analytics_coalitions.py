"""A coalition's member shops share one account per customer (the points and tiers events'
shop_id is the coalition, at_shop the member): each member's report counts its own orders and
the points earned and spent at that shop, with the coalition's tier, through real Kafka, the
shop directory's tables and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from analytics_support import ShopEvents, analytics_service, at, join, publish
from infrastructure import Endpoints
from notify_support import event_of
from shops_support import ShopsService, shops_service
from support import eventually, unique

from shared.events import CloudEvent

# A period long past: in a database of its own, no customer of another test is acquired
# before its end, so that even the platform's figures are this test's alone.
PERIOD = {"from": "1986-01-01", "to": "1987-01-01"}


@pytest.fixture
async def service(infrastructure: Endpoints) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An analytics service with a database of its own, and that database's URL."""
    async with analytics_service(infrastructure, "loyalty_analytics_coal") as running_service:
        yield running_service


@pytest.fixture(scope="module")
async def shops(infrastructure: Endpoints) -> AsyncIterator[ShopsService]:
    async with shops_service(infrastructure) as running_shops:
        yield running_shops


async def stored(url: str, coalition: str, shops: list[str]) -> dict[str, int]:
    """The facts kept (other tests publish on the same topics meanwhile)."""
    conn = await asyncpg.connect(url)
    try:
        counts = {
            table: int(
                await conn.fetchval(
                    f"SELECT count(*) FROM analytics.{table} WHERE shop_id = ANY($1)", shops
                )
            )
            for table in ("customers", "orders")
        }
        counts["signed_up"] = int(
            await conn.fetchval(
                "SELECT count(*) FROM analytics.customers"
                " WHERE shop_id = ANY($1) AND signed_up_at IS NOT NULL",
                shops,
            )
        )
        for table in ("points", "tier_changes"):
            counts[table] = int(
                await conn.fetchval(
                    f"SELECT count(*) FROM analytics.{table} WHERE shop_id = $1", coalition
                )
            )
        return counts
    finally:
        await conn.close()


def figures(report: dict[str, Any]) -> dict[str, Any]:
    purchases, programme = report["purchases"], report["programme"]
    return {
        "orders_revenue": [purchases["orders"], purchases["revenue"]],
        "customers_members": [programme["customers"], programme["members"]],
        "issued_redeemed_outstanding": [
            programme[k] for k in ("points_issued", "points_redeemed", "outstanding_points")
        ],
        "tiers_at_end": report["tiers_by_month"][-1]["customers"],
        "points_by_month": {
            p["month"]: [p["issued"], p["redeemed"]] for p in report["points_by_month"]
        },
    }


@pytest.mark.timeout(150)
async def test_each_member_shop_counts_its_orders_and_the_points_made_there_with_the_shared_tier(
    service: tuple[httpx.AsyncClient, str], producer: AIOKafkaProducer
) -> None:
    api, url = service
    coalition = unique("coalition")
    a, b = ShopEvents(coalition), ShopEvents(coalition)
    await join(producer, url, coalition, [a.id, b.id])
    ann, ben = unique("c"), unique("c")
    # Ann shops at both members: she earns at A, earns at B (where the coalition's gold comes),
    # and spends at A. Ben shops at B only.
    await publish(
        producer,
        [
            a.signed_up(ann, "1985-09-01"),
            b.signed_up(ann, "1985-09-01"),
            a.paid(ann, "1986-03-01", 100_000),
            a.points("earned", ann, "1986-03-01", 10),
            b.signed_up(ben, "1986-02-01"),
            b.paid(ben, "1986-04-01", 300_000),
            b.points("earned", ben, "1986-04-01", 30),
            b.paid(ann, "1986-06-01", 200_000),
            b.points("earned", ann, "1986-06-01", 20),
            b.tier(ann, "1986-06-01", "gold"),
            a.points("redeemed", ann, "1986-07-01", -5),
        ],
    )
    await eventually(
        lambda: stored(url, coalition, [a.id, b.id]),
        lambda n: (
            n == {"customers": 3, "signed_up": 3, "orders": 3, "points": 4, "tier_changes": 1}
        ),
    )

    reports = {}
    for name, shop in (("a", a.id), ("b", b.id), ("platform", None), ("coalition", coalition)):
        params = PERIOD if shop is None else {**PERIOD, "shop": shop}
        response = await api.get("/v1/report", params=params)
        assert response.status_code == 200, response.text
        reports[name] = response.json()

    assert figures(reports["a"]) == {
        "orders_revenue": [1, "100000"],
        "customers_members": [1, 1],
        "issued_redeemed_outstanding": [10, 5, 5],  # earned and spent at A
        "tiers_at_end": {"gold": 1, "none": 0},  # the coalition's tier, reached at B
        "points_by_month": {"1986-03": [10, 0], "1986-07": [0, 5]},
    }
    assert figures(reports["b"]) == {
        "orders_revenue": [2, "500000"],
        "customers_members": [2, 2],
        "issued_redeemed_outstanding": [50, 0, 50],
        "tiers_at_end": {"gold": 1, "none": 1},
        "points_by_month": {"1986-04": [30, 0], "1986-06": [20, 0]},
    }
    # The platform counts (shop, customer) pairs: Ann at A and at B, each gold; every entry
    # of the coalition's account once, at the shop where it was made.
    assert figures(reports["platform"]) == {
        "orders_revenue": [3, "600000"],
        "customers_members": [3, 3],
        "issued_redeemed_outstanding": [60, 5, 55],
        "tiers_at_end": {"gold": 2, "none": 1},
        "points_by_month": {
            "1986-03": [10, 0],
            "1986-04": [30, 0],
            "1986-06": [20, 0],
            "1986-07": [0, 5],
        },
    }
    # The coalition's report: its members' customers, each once (Ann shopped at both), all
    # their orders, and every entry of the shared accounts.
    assert figures(reports["coalition"]) == {
        "orders_revenue": [3, "600000"],
        "customers_members": [2, 2],
        "issued_redeemed_outstanding": [60, 5, 55],
        "tiers_at_end": {"gold": 1, "none": 1},
        "points_by_month": {
            "1986-03": [10, 0],
            "1986-04": [30, 0],
            "1986-06": [20, 0],
            "1986-07": [0, 5],
        },
    }
    assert reports["coalition"]["purchases"]["repeat_customers"] == 1  # Ann: one at each shop
    by_tier = {v["tier"]: v["customers"] for v in reports["a"]["value_by_tier"]}
    assert by_tier == {"gold": 1}
    # A member shop's report may ask for the coalition's tiers.
    gold_at_a = await api.get("/v1/report", params={**PERIOD, "shop": a.id, "tier": "gold"})
    assert gold_at_a.status_code == 200, gold_at_a.text
    assert gold_at_a.json()["programme"]["customers"] == 1


async def status_with(api: httpx.AsyncClient, key: str, **params: str) -> int:
    response = await api.get("/v1/report", params={**PERIOD, **params}, headers={"X-API-Key": key})
    return response.status_code


@pytest.mark.timeout(150)
async def test_a_coalitions_key_sees_the_coalitions_report_and_a_members_key_does_not(
    service: tuple[httpx.AsyncClient, str], producer: AIOKafkaProducer, shops: ShopsService
) -> None:
    api, url = service
    coalition = unique("coalition")
    a, b = ShopEvents(coalition), ShopEvents(coalition)
    for shop in (coalition, a.id, b.id):  # the shops service makes keys of known ids only
        await shops.new_shop(shop)
    coalition_key = await shops.new_key(coalition, ["read"])
    member_key = await shops.new_key(a.id, ["read"])
    await join(producer, url, coalition, [a.id, b.id])
    ann, ben = unique("c"), unique("c")
    await publish(
        producer,
        [
            a.signed_up(ann, "1986-03-01"),
            b.signed_up(ann, "1986-04-01"),
            b.signed_up(ben, "1986-05-01"),
        ],
    )
    await eventually(lambda: stored(url, coalition, [a.id, b.id]), lambda n: n["signed_up"] == 3)
    await eventually(lambda: status_with(api, coalition_key), lambda status: status == 200)
    await eventually(lambda: status_with(api, member_key), lambda status: status == 200)

    as_coalition = await api.get("/v1/report", params=PERIOD, headers={"X-API-Key": coalition_key})
    as_member = await api.get("/v1/report", params=PERIOD, headers={"X-API-Key": member_key})
    member_asks = await status_with(api, member_key, shop=coalition)

    assert as_coalition.json()["query"]["segment"]["shop"] == coalition
    assert as_coalition.json()["programme"]["customers"] == 2  # Ann once, and Ben
    assert as_member.json()["programme"]["customers"] == 1
    assert member_asks == 404


def carried(member: ShopEvents, customer: str, day: str, delta: int) -> list[CloudEvent[Any]]:
    """The pair of entries by which earn's coalition sweep carries a balance of the member's own
    account into the coalition's."""
    pair = []
    for holder, sign, at_shop in ((member.id, -1, None), (member.coalition, 1, member.id)):
        data = {
            "entry_id": unique("joined"),
            "customer_id": customer,
            "shop_id": holder,
            "delta": sign * delta,
            "balance_after": max(sign * delta, 0),
            "reason": "coalition.joined",
        } | ({} if at_shop is None else {"at_shop": at_shop})
        pair.append(event_of("points.adjusted", customer, data, at(day)))
    return pair


@pytest.mark.timeout(150)
async def test_points_carried_into_the_coalition_are_outstanding_but_neither_issued_nor_taken_back(
    service: tuple[httpx.AsyncClient, str], producer: AIOKafkaProducer
) -> None:
    api, url = service
    coalition = unique("coalition")
    n = ShopEvents(coalition)
    await join(producer, url, coalition, [n.id])
    cam = unique("c")
    await publish(
        producer,
        [
            n.signed_up(cam, "1985-09-01"),
            *carried(n, cam, "1986-02-01", 40),
            n.points("earned", cam, "1986-03-01", 10),
        ],
    )
    await eventually(lambda: stored(url, coalition, [n.id]), lambda found: found["points"] == 2)

    kinds = await eventually(
        lambda: _kinds_of(url, cam),
        lambda found: len(found) == 3,
    )
    reports = {}
    for name, params in (("n", {"shop": n.id}), ("coalition", {"shop": coalition})):
        response = await api.get("/v1/report", params={**PERIOD, **params})
        assert response.status_code == 200, response.text
        reports[name] = response.json()

    assert kinds == [("carried", -40), ("carried", 40), ("earned", 10)]
    for report in reports.values():
        programme = report["programme"]
        assert [
            programme[k]
            for k in ("points_issued", "points_reversed", "points_redeemed", "outstanding_points")
        ] == [10, 0, 0, 50]
        assert {p["month"]: p["issued"] for p in report["points_by_month"]} == {"1986-03": 10}


async def _kinds_of(url: str, customer: str) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT kind, delta FROM analytics.points WHERE customer_id = $1 ORDER BY at, delta",
            customer,
        )
    finally:
        await conn.close()
    return [(r["kind"], r["delta"]) for r in rows]

"""Analytics keys every fact by (shop, customer): two shops' streams on the same customer ids,
interleaved on the same Kafka keys, make each shop's figures its own, and the platform's figures
count each (shop, customer) pair once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from analytics_support import ShopEvents, analytics_service, at, publish
from infrastructure import Endpoints
from support import eventually, unique

from shared.events import CloudEvent

# A period long past: in a database of its own, no customer of another test is acquired
# before its end, so that even the platform's figures are this test's alone.
PERIOD = {"from": "1986-01-01", "to": "1987-01-01"}


@pytest.fixture
async def service(infrastructure: Endpoints) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An analytics service with a database of its own, and that database's URL."""
    async with analytics_service(infrastructure, "loyalty_analytics_shops") as running_service:
        yield running_service


def interleave(*streams: list[CloudEvent[Any]]) -> list[CloudEvent[Any]]:
    longest = max(len(s) for s in streams)
    return [s[i] for i in range(longest) for s in streams if i < len(s)]


async def stored(url: str, *shops: ShopEvents) -> dict[str, int]:
    """The facts kept of the shops' events (other tests publish on the same topics meanwhile)."""
    conn = await asyncpg.connect(url)
    try:
        ids = [shop.id for shop in shops]
        counts = {
            table: int(
                await conn.fetchval(
                    f"SELECT count(*) FROM analytics.{table} WHERE shop_id = ANY($1)", ids
                )
            )
            for table in ("customers", "orders", "points", "tier_changes", "notifications")
        }
        # A payment makes a customer row too: the sign-ups (another topic) may come later.
        counts["signed_up"] = int(
            await conn.fetchval(
                "SELECT count(*) FROM analytics.customers"
                " WHERE shop_id = ANY($1) AND signed_up_at IS NOT NULL",
                ids,
            )
        )
        return counts
    finally:
        await conn.close()


@pytest.mark.timeout(120)
async def test_the_same_customer_ids_at_two_shops_are_separate_customers_in_every_figure(
    service: tuple[httpx.AsyncClient, str], producer: AIOKafkaProducer
) -> None:
    api, url = service
    a, b = ShopEvents(), ShopEvents()
    ann, ben = unique("c"), unique("c")
    # Ann: churns at A (no order for a year), stays at B (gold there). Ben: stays at A, where
    # a win-back message converts; signs up at B in the period, gets a message, never orders.
    at_a = [
        a.signed_up(ann, "1985-09-01"),
        a.paid(ann, "1985-10-01", 100_000),
        a.points("earned", ann, "1985-10-01", 10),
        a.signed_up(ben, "1985-11-01"),
        a.paid(ben, "1986-03-01", 200_000),
        a.points("earned", ben, "1986-03-01", 20),
        a.sent(ben, "1986-10-30", "winback"),
        a.paid(ben, "1986-11-01", 300_000),
        a.membership("purchased", ann),
        a.membership("cancelled", ann, cancelled="1986-03-01"),
    ]
    at_b = [
        b.signed_up(ann, "1985-09-01"),
        b.paid(ann, "1985-10-01", 400_000),
        b.signed_up(ben, "1986-02-01"),
        b.membership("purchased", ann),  # before A's cancellation, which must not end it
        b.paid(ann, "1986-06-01", 500_000),
        b.points("earned", ann, "1986-06-01", 30),
        b.tier(ann, "1986-06-01", "gold"),
        b.points("redeemed", ann, "1986-07-01", -5),
        b.sent(ben, "1986-10-30", "winback"),
        b.paid(ann, "1986-10-01", 600_000),
    ]
    await publish(producer, interleave(at_a, at_b))
    await eventually(
        lambda: stored(url, a, b),
        lambda n: (
            n
            == {
                "customers": 4,
                "signed_up": 4,
                "orders": 6,
                "points": 4,
                "tier_changes": 1,
                "notifications": 2,
            }
        ),
    )
    # The memberships (a topic of their own) are in, A's cancellation included.
    await eventually(
        lambda: membership_ends(url, ann), lambda rows: len(rows) == 2 and rows[a.id] != rows[b.id]
    )

    reports = {}
    for name, shop in (("a", a.id), ("b", b.id), ("platform", None)):
        params = PERIOD if shop is None else {**PERIOD, "shop": shop}
        response = await api.get("/v1/report", params=params)
        assert response.status_code == 200, response.text
        reports[name] = response.json()

    def figures(report: dict[str, Any]) -> dict[str, Any]:
        retention, purchases = report["retention"], report["purchases"]
        programme, last_month = report["programme"], report["tiers_by_month"][-1]
        return {
            "start_end_new_churned": [
                retention[k]
                for k in ("customers_at_start", "customers_at_end", "new_customers", "churned")
            ],
            "orders_revenue": [purchases["orders"], purchases["revenue"]],
            "customers_members": [programme["customers"], programme["members"]],
            "issued_redeemed_outstanding": [
                programme[k] for k in ("points_issued", "points_redeemed", "outstanding_points")
            ],
            "tiers_at_end": last_month["customers"],
            "messages": {
                m["trigger"]: [m["sent"], m["converted"], m["attributed_revenue"]]
                for m in report["messages"]
            },
        }

    assert figures(reports["a"]) == {
        "start_end_new_churned": [2, 1, 0, 1],  # Ann churned at A
        "orders_revenue": [2, "500000"],
        "customers_members": [2, 2],
        "issued_redeemed_outstanding": [20, 0, 30],
        "tiers_at_end": {"none": 2},
        "messages": {"winback": [1, 1, "300000"]},
    }
    assert figures(reports["b"]) == {
        "start_end_new_churned": [1, 1, 1, 0],  # Ann is still a customer at B
        "orders_revenue": [2, "1100000"],
        "customers_members": [2, 1],
        "issued_redeemed_outstanding": [30, 5, 25],
        "tiers_at_end": {"gold": 1, "none": 1},
        "messages": {"winback": [1, 0, "0"]},  # Ben's order at A is not B's conversion
    }
    assert figures(reports["platform"]) == {
        "start_end_new_churned": [3, 2, 1, 1],
        "orders_revenue": [4, "1600000"],
        "customers_members": [4, 3],
        "issued_redeemed_outstanding": [50, 5, 55],
        "tiers_at_end": {"gold": 1, "none": 3},
        "messages": {"winback": [2, 1, "300000"]},
    }
    gold = {v["tier"]: v["customers"] for v in reports["b"]["value_by_tier"]}
    assert gold == {"gold": 1, "none": 0}

    memberships = await eventually(
        lambda: membership_ends(url, ann), lambda rows: len(rows) == 2 and rows[a.id] != rows[b.id]
    )
    assert memberships == {a.id: at("1986-03-01"), b.id: at("1987-02-01")}


async def membership_ends(url: str, customer: str) -> dict[str, datetime]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT shop_id, ends_at FROM analytics.memberships WHERE customer_id = $1", customer
        )
    finally:
        await conn.close()
    return {r["shop_id"]: r["ends_at"] for r in rows}


async def test_a_tier_of_another_shop_is_not_found_for_a_shop(
    service: tuple[httpx.AsyncClient, str], producer: AIOKafkaProducer
) -> None:
    api, url = service
    a, b = ShopEvents(), ShopEvents()
    customer = unique("c")
    await publish(
        producer,
        [
            a.signed_up(customer, "1986-01-10"),
            b.signed_up(customer, "1986-01-10"),
            b.tier(customer, "1986-02-01", "platinum"),
        ],
    )
    await eventually(
        lambda: stored(url, a, b), lambda n: n["customers"] == 2 and n["tier_changes"] == 1
    )

    at_a = await api.get("/v1/report", params={**PERIOD, "shop": a.id, "tier": "platinum"})
    at_b = await api.get("/v1/report", params={**PERIOD, "shop": b.id, "tier": "platinum"})
    anywhere = await api.get("/v1/report", params={**PERIOD, "tier": "platinum"})

    assert at_a.status_code == 404, at_a.text
    assert "no customer of the shop" in at_a.json()["detail"]
    assert at_b.json()["retention"]["new_customers"] == 1
    assert anywhere.json()["retention"]["new_customers"] == 1

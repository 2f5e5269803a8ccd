"""The overview is the report's figures of today and of this month so far, answered from its
cache once computed, and recomputed by one process at a time once it is old."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from analytics_support import ShopEvents, analytics_service, join, publish
from infrastructure import Endpoints
from support import eventually, unique

from services.analytics.overviews import SHAPE, OverviewSource, refresh_due
from shared.clock import FixedClock

ZONE = "Asia/Ho_Chi_Minh"
# 16:00 in Ho Chi Minh City on 17 May 1991: long past, in a database of the module's own. The
# events happen at 10:00 there (03:00 UTC) on their day.
NOW = datetime(1991, 5, 17, 9, 0, tzinfo=UTC)
TODAY = {"from": "1991-05-17", "to": "1991-05-18"}
MONTH = {"from": "1991-05-01", "to": "1991-05-18"}
LAST_30_DAYS = {"from": "1991-04-18", "to": "1991-05-18"}
# The background refresher never finds a row due: the tests below refresh by hand.
EVERY_S = 3600


@pytest.fixture(scope="module")
async def service(
    infrastructure: Endpoints,
) -> AsyncIterator[tuple[httpx.AsyncClient, str, FixedClock]]:
    clock = FixedClock(NOW)
    async with analytics_service(
        infrastructure,
        "loyalty_analytics_overview",
        clock=clock,
        analytics_time_zone=ZONE,
        analytics_overview_every_s=EVERY_S,
    ) as (api, url):
        yield api, url, clock


def events_of(shop: ShopEvents) -> tuple[list[Any], int, int]:
    """A month of a shop's life: its events, how many points entries and messages."""
    ann, ben, cam = unique("ann"), unique("ben"), unique("cam")
    events = [
        shop.signed_up(ann, "1991-03-10"),
        shop.paid(ann, "1991-03-10", 1_000_000),
        shop.points("earned", ann, "1991-03-10", 100),
        shop.tier(ann, "1991-03-10", "gold"),
        shop.signed_up(ben, "1991-05-03"),
        shop.paid(ben, "1991-05-03", 500_000),
        shop.points("earned", ben, "1991-05-03", 50),
        shop.points("redeemed", ann, "1991-05-03", -40),
        shop.signed_up(cam, "1991-05-17"),
        shop.paid(cam, "1991-05-17", 300_000),
        shop.points("earned", cam, "1991-05-17", 30),
        shop.points("redeemed", ben, "1991-05-17", -20),
        shop.tier(ben, "1991-05-17", "silver"),
        shop.sent(ann, "1991-05-03", "winback"),
        shop.notified("suppressed", ben, "1991-05-17", "welcome", reason="quiet_hours_expired"),
        shop.notified("suppressed", cam, "1991-05-17", "welcome", reason="no_consent"),
        shop.notified("failed", ann, "1991-05-17", "birthday", error="mailbox full"),
        shop.sent(cam, "1991-05-17", "welcome"),
    ]
    return events, 5, 5


async def facts_of(url: str, shop: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        points = await conn.fetchval(
            "SELECT count(*) FROM analytics.points WHERE shop_id = $1", shop
        )
        messages = await conn.fetchval(
            "SELECT count(*) FROM analytics.notifications WHERE shop_id = $1", shop
        )
        return int(points), int(messages)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def shop(
    service: tuple[httpx.AsyncClient, str, FixedClock], producer: AIOKafkaProducer
) -> ShopEvents:
    _, url, _ = service
    shop = ShopEvents()
    events, points, messages = events_of(shop)
    await publish(producer, events)
    await eventually(lambda: facts_of(url, shop.id), lambda n: n == (points, messages))
    return shop


async def get(api: httpx.AsyncClient, path: str, **params: str) -> Any:
    answer = await api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_agrees(overview: Any, today: Any, month: Any) -> None:
    """The overview's figures are the reports' of today and of the month so far."""
    for period, report in (("today", today), ("month", month)):
        figures, programme = overview[period], report["programme"]
        assert (figures["start"], figures["end"]) == (report["query"]["start"], "1991-05-18")
        assert figures["new_customers"] == report["retention"]["new_customers"]
        assert figures["points_issued"] == programme["points_issued"]
        assert figures["points_redeemed"] == programme["points_redeemed"]
        assert figures["points_expired"] == programme["points_expired"]
        for outcome in ("sent", "failed", "suppressed"):
            assert figures["messages"][outcome] == sum(m[outcome] for m in report["messages"])
        reasons: dict[str, int] = {}
        for m in report["messages"]:
            for reason, n in m["suppressed_by_reason"].items():
                reasons[reason] = reasons.get(reason, 0) + n
        assert figures["messages"]["suppressed_by_reason"] == reasons
    programme = month["programme"]
    assert overview["month"]["retention_rate"] == month["retention"]["retention_rate"]
    assert (overview["customers"], overview["members"]) == (
        programme["customers"],
        programme["members"],
    )
    assert overview["points_outstanding"] == programme["outstanding_points"]
    assert overview["points_outstanding_value"] == programme["liability_value"]
    assert {t["tier"]: t["customers"] for t in overview["tiers"]} == (
        month["tiers_by_month"][-1]["customers"]
    )


@pytest.mark.timeout(120)
async def test_the_overview_equals_the_reports_figures_of_today_and_of_the_month(
    service: tuple[httpx.AsyncClient, str, FixedClock], shop: ShopEvents
) -> None:
    api = service[0]
    overview = await get(api, "/v1/overview", shop=shop.id, time_zone=ZONE, currency="VND")
    today = await get(api, "/v1/report", shop=shop.id, **TODAY)
    month = await get(api, "/v1/report", shop=shop.id, **MONTH)
    last_30 = await get(api, "/v1/report", shop=shop.id, **LAST_30_DAYS)

    assert overview["as_of"] == NOW.isoformat().replace("+00:00", "Z")
    assert (overview["shop_id"], overview["time_zone"], overview["currency"]) == (
        shop.id,
        ZONE,
        "VND",
    )
    assert_agrees(overview, today, month)
    assert overview["customers"] == 3
    # Cam signed up today; Ben earlier this month.
    assert (overview["today"]["new_customers"], overview["month"]["new_customers"]) == (1, 2)
    assert overview["points_outstanding"] == 120
    assert Decimal(overview["points_outstanding_value"]) == 120 * Decimal(100)
    # The figures themselves, so that two equally wrong answers cannot pass.
    assert (overview["today"]["points_issued"], overview["today"]["points_redeemed"]) == (30, 20)
    assert (overview["month"]["points_issued"], overview["month"]["points_redeemed"]) == (80, 60)
    assert overview["today"]["messages"] == {
        "sent": 1,
        "failed": 1,
        "suppressed": 2,
        "suppressed_by_reason": {"no_consent": 1, "quiet_hours_expired": 1},
    }
    daily = overview["daily"]
    assert [d["day"] for d in (daily[0], daily[-1])] == ["1991-04-18", "1991-05-17"]
    assert len(daily) == 30
    assert sum(d["issued"] for d in daily) == last_30["programme"]["points_issued"]
    assert sum(d["redeemed"] for d in daily) == last_30["programme"]["points_redeemed"]
    assert {
        d["day"]: (d["issued"], d["redeemed"]) for d in daily if d["issued"] or d["redeemed"]
    } == {
        "1991-05-03": (50, 40),
        "1991-05-17": (30, 20),
    }


@pytest.mark.timeout(150)
async def test_a_coalitions_and_a_members_overview_follow_the_reports_rules(
    service: tuple[httpx.AsyncClient, str, FixedClock], producer: AIOKafkaProducer
) -> None:
    api, url, _ = service
    coalition = unique("coalition")
    a, b = ShopEvents(coalition), ShopEvents(coalition)
    await join(producer, url, coalition, [a.id, b.id])
    ann, ben = unique("ann"), unique("ben")
    # Ann shops at both members, Ben at B; the account (points, tier) is the coalition's.
    await publish(
        producer,
        [
            a.signed_up(ann, "1991-05-02"),
            b.signed_up(ann, "1991-05-02"),
            b.signed_up(ben, "1991-05-05"),
            b.points("earned", ben, "1991-05-05", 30),
            a.points("earned", ann, "1991-05-17", 10),
            b.points("redeemed", ann, "1991-05-17", -5),
            b.tier(ann, "1991-05-17", "gold"),
        ],
    )

    async def points() -> int:
        return (await facts_of(url, coalition))[0]

    await eventually(points, lambda n: n == 3)
    await eventually(
        lambda: get(api, "/v1/report", shop=b.id, **MONTH),
        lambda report: report["programme"]["customers"] == 2,
    )
    overviews = {}
    for shop in (coalition, a.id, b.id):
        overview = await get(api, "/v1/overview", shop=shop, time_zone=ZONE)
        today = await get(api, "/v1/report", shop=shop, **TODAY)
        month = await get(api, "/v1/report", shop=shop, **MONTH)
        assert_agrees(overview, today, month)
        overviews[shop] = overview
    # Ann once in the coalition's; at A only what was earned there, with the shared tier.
    assert overviews[coalition]["customers"] == 2
    assert overviews[coalition]["points_outstanding"] == 35
    assert overviews[a.id]["today"]["points_issued"] == 10
    assert overviews[a.id]["today"]["points_redeemed"] == 0
    assert {t["tier"]: t["customers"] for t in overviews[a.id]["tiers"]} == {"gold": 1, "none": 0}


@pytest.mark.timeout(120)
async def test_a_computed_overview_is_answered_until_a_refresh_recomputes_it_once(
    service: tuple[httpx.AsyncClient, str, FixedClock],
    shop: ShopEvents,
    producer: AIOKafkaProducer,
) -> None:
    api, url, clock = service
    usd = {"shop": shop.id, "time_zone": ZONE, "currency": "USD"}
    first = await get(api, "/v1/overview", **usd)
    later = unique("dan")
    await publish(producer, [shop.signed_up(later, "1991-05-17")])

    async def customers() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM analytics.customers WHERE shop_id = $1", shop.id
                )
            )
        finally:
            await conn.close()

    await eventually(customers, lambda n: n == 4)
    clock.set(NOW + timedelta(seconds=30))
    # Stored: the new customer is not in it, and it says when it was computed.
    assert await get(api, "/v1/overview", **usd) == first
    assert (await get(api, "/v1/report", shop=shop.id, **MONTH))["programme"]["customers"] == 4

    clock.set(NOW + timedelta(seconds=90))
    source = OverviewSource(
        schema="analytics",
        clock=clock,
        point_values={"VND": Decimal(100)},
        churn_after_days=180,
    )
    pool = await asyncpg.create_pool(url, min_size=1, max_size=6)
    try:
        # Two processes at once: each due overview is recomputed by one of them.
        counts = await asyncio.gather(
            refresh_due(pool, source, every_s=60), refresh_due(pool, source, every_s=60)
        )
        due = await pool.fetchval(
            "SELECT count(*) FROM analytics.overviews_by_shape WHERE computed_at = $1",
            NOW + timedelta(seconds=90),
        )
    finally:
        await pool.close()
    assert sum(counts) == due >= 1
    refreshed = await get(api, "/v1/overview", **usd)
    assert refreshed["customers"] == 4
    assert refreshed["as_of"] == (NOW + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")

    # A row of another shape (another release's overview, here one without a figure this one
    # has) is neither answered nor overwritten: each release keeps its own.
    conn = await asyncpg.connect(url)
    try:
        copied = await conn.execute(
            """INSERT INTO analytics.overviews_by_shape
                   (shape, shop_id, time_zone, currency, computed_at, requested_at, body)
               SELECT 'earlier', shop_id, time_zone, currency, computed_at, requested_at,
                      body #- '{today,new_customers}'
               FROM analytics.overviews_by_shape
               WHERE shape = $2 AND shop_id = $1 AND currency = 'USD'""",
            shop.id,
            SHAPE,
        )
        await conn.execute(
            "DELETE FROM analytics.overviews_by_shape WHERE shape = $2 AND shop_id = $1",
            shop.id,
            SHAPE,
        )
        again = await get(api, "/v1/overview", **usd)
        earlier = await conn.fetchval(
            """SELECT body #> '{today}' ? 'new_customers' FROM analytics.overviews_by_shape
               WHERE shape = 'earlier' AND shop_id = $1""",
            shop.id,
        )
    finally:
        await conn.close()
    assert copied == "INSERT 0 1"
    assert again["today"] == refreshed["today"]
    assert again["today"]["new_customers"] == 2  # Cam and Dan
    assert earlier is False


async def test_an_unknown_zone_or_currency_is_a_422_naming_it(
    service: tuple[httpx.AsyncClient, str, FixedClock], shop: ShopEvents
) -> None:
    api = service[0]
    for params, location in (
        ({"time_zone": "Mars/Olympus"}, "query.time_zone"),
        ({"currency": "XYZ"}, "query.currency"),
    ):
        answer = await api.get("/v1/overview", params={"shop": shop.id, **params})
        assert answer.status_code == 422, answer.text
        assert [e["location"] for e in answer.json()["errors"]] == [location]

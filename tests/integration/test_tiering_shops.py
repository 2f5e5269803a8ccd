"""Two shops on one tiering service: the same customer id has a tier, a history and events at
each, under each shop's own ladder (VND and USD), and every route answers for one shop only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import TopicTail, consumer_record, eventually, order_paid, running, unique
from tiering_tools import ADMIN_API_KEY, OPERATOR, TieringService, tiering_settings

from services.tiering.backfill import backfill
from services.tiering.bootstrap import bootstrap
from services.tiering.handlers import apply_activity, evaluate_due
from services.tiering.programme import EXAMPLE, programme_from_toml
from services.tiering.shops import TierProgrammes
from shared.clock import FixedClock, SystemClock
from shared.consumer import Incoming, to_incoming
from shared.events import CloudEvent, encode_event
from shared.topics import ensure_topics

VN, US = unique("vn-fashion"), unique("us-outfit")
USD_LADDER = """
time_zone = "America/New_York"
basis = "spend"
warn_days = 5

[window]
kind = "rolling"
days = 30

[downgrade]
mode = "end_of_period"

[[tiers]]
code = "basic"
name = "Basic"

[[tiers]]
code = "plus"
name = "Plus"
multiplier = 1.5
enter = { USD = "500" }
keep = { USD = "400" }

[[tiers]]
code = "premier"
name = "Premier"
multiplier = 2
enter = { USD = "1500" }
"""


def two_shops() -> TierProgrammes:
    shops = TierProgrammes()
    since = datetime(2020, 1, 1, tzinfo=UTC)
    vnd = programme_from_toml(EXAMPLE.read_text(encoding="utf-8"), source=f"{VN} v1")
    shops.add_version(VN, since, vnd)
    shops.add_version(US, since, programme_from_toml(USD_LADDER, source=f"{US} v1"))
    return shops


def at_shop(shop_id: str, event: CloudEvent[Any]) -> CloudEvent[Any]:
    return event.model_copy(update={"data": event.data.model_copy(update={"shop_id": shop_id})})


def paid(shop_id: str, customer: str, total: str, currency: str, **kw: Any) -> CloudEvent[Any]:
    return at_shop(shop_id, order_paid(customer, total=total, currency=currency, **kw))


async def send(producer: AIOKafkaProducer, *events: CloudEvent[Any]) -> None:
    for event in events:
        value = encode_event(event)
        await producer.send_and_wait("shop.orders", value, key=event.subject.encode())


async def tiers_by_shop(db: asyncpg.Pool, schema: str, customer: str) -> dict[str, str]:
    rows = await db.fetch(
        f"SELECT shop_id, tier FROM {schema}.customers WHERE customer_id = $1", customer
    )
    return {r["shop_id"]: r["tier"] for r in rows}


@pytest.fixture(scope="module")
async def shops(infrastructure: Endpoints) -> AsyncIterator[TieringService]:
    """The tiering service serving two shops (and no shop `default`)."""
    app, runtime = bootstrap(tiering_settings(infrastructure), programmes=two_shops())
    transport = httpx.ASGITransport(app=app)
    async with (
        running(app, runtime),
        httpx.AsyncClient(transport=transport, base_url="http://tiering", headers=OPERATOR) as api,
    ):
        yield TieringService(runtime, api)


async def test_interleaved_shops_keep_separate_tiers_histories_and_events_per_customer(
    shops: TieringService, db: asyncpg.Pool, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda record: record.key == customer.encode()  # noqa: E731

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tail:
        await send(
            producer,
            paid(VN, customer, "3000000", "VND"),
            paid(US, customer, "300", "USD"),
            paid(VN, customer, "2500000", "VND"),
            paid(US, customer, "250", "USD"),
        )
        first = await tail.collect(mine, count=2)
        await send(producer, paid(US, customer, "1000", "USD"))
        second = await tail.collect(mine, count=1)
        later = await tail.settle(mine, seconds=2)

    assert later == []
    changes = {
        (d["shop_id"], d["from_tier"], d["to_tier"], d["currency"], d["qualifying_amount"])
        for d in (json.loads(r.value)["data"] for r in (*first, *second))
    }
    assert changes == {
        (VN, "member", "silver", "VND", "5500000"),
        (US, "basic", "plus", "USD", "550"),
        (US, "plus", "premier", "USD", "1550"),
    }
    assert await tiers_by_shop(db, "tiering", customer) == {VN: "silver", US: "premier"}
    history = await db.fetch(
        "SELECT shop_id, to_tier FROM tiering.tier_history WHERE customer_id = $1 ORDER BY seq",
        customer,
    )
    assert [(h["shop_id"], h["to_tier"]) for h in history if h["shop_id"] == VN] == [(VN, "silver")]
    assert [(h["shop_id"], h["to_tier"]) for h in history if h["shop_id"] == US] == [
        (US, "plus"),
        (US, "premier"),
    ]
    totals = await db.fetch(
        """SELECT shop_id, unit, sum(added - removed) AS net FROM tiering.contributions
           WHERE customer_id = $1 GROUP BY 1, 2 ORDER BY 1""",
        customer,
    )
    assert {(t["shop_id"], t["unit"], t["net"]) for t in totals} == {
        (VN, "VND", 5_500_000),
        (US, "USD", 1550),
    }


async def test_every_route_answers_for_the_shop_named_and_404_at_any_other(
    shops: TieringService, db: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await send(producer, paid(VN, customer, "6000000", "VND"))
    await eventually(lambda: tiers_by_shop(db, "tiering", customer), lambda t: t == {VN: "silver"})
    api = shops.api
    paths = [f"/v1/customers/{customer}/{p}" for p in ("tier", "progress", "tier-history")]

    at_vn = [await api.get(p, headers={"X-Shop-Id": VN}) for p in paths]
    at_us = [await api.get(p, headers={"X-Shop-Id": US}) for p in paths]
    at_unknown = [await api.get(p, headers={"X-Shop-Id": unique("nowhere")}) for p in paths]
    without_shop = [await api.get(p) for p in paths]

    assert [r.status_code for r in at_vn] == [200, 200, 200]
    assert at_vn[0].json()["tier"] == "silver"
    assert [e["to_tier"] for e in at_vn[2].json()["items"]] == ["silver"]
    assert [r.status_code for r in at_us] == [404, 404, 404]
    assert [r.status_code for r in at_unknown] == [404, 404, 404]
    assert [r.status_code for r in without_shop] == [404, 404, 404]
    assert all(r.headers["content-type"] == "application/problem+json" for r in at_us)


async def test_a_manual_tier_is_set_at_the_shop_named_only(
    shops: TieringService, db: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await send(producer, paid(VN, customer, "6000000", "VND"))
    await eventually(lambda: tiers_by_shop(db, "tiering", customer), lambda t: t == {VN: "silver"})
    url = f"/v1/customers/{customer}/manual-tier"
    ends_at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {"tier": "premier", "ends_at": ends_at, "reason": "launch guest"}
    admin = {"X-API-Key": ADMIN_API_KEY}

    at_us = await shops.api.put(url, json=body, headers={**admin, "X-Shop-Id": US})
    premier_at_vn = await shops.api.put(url, json=body, headers={**admin, "X-Shop-Id": VN})
    at_unknown = await shops.api.put(
        url, json=body, headers={**admin, "X-Shop-Id": unique("nowhere")}
    )
    vn_history = await shops.api.get(f"{url[:-12]}/tier-history", headers={"X-Shop-Id": VN})

    assert at_us.status_code == 200
    assert at_us.json()["tier"] == "premier"
    assert premier_at_vn.status_code == 422  # the VND ladder has no tier "premier"
    assert at_unknown.status_code == 404
    assert await tiers_by_shop(db, "tiering", customer) == {VN: "silver", US: "premier"}
    assert [e["to_tier"] for e in vn_history.json()["items"]] == ["silver"]


async def test_an_order_of_a_shop_without_a_tier_programme_is_dead_lettered(
    shops: TieringService, db: asyncpg.Pool, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer, stranger = unique("c"), unique("nowhere")
    order = paid(stranger, customer, "9000000", "VND")
    await ensure_topics(infrastructure.kafka_bootstrap, ["shop.orders.dlq"], partitions=4)

    async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders.dlq") as tail:
        await send(producer, order)
        [dead] = await tail.collect(lambda r: r.key == customer.encode(), count=1)

    headers = dict(dead.headers)
    assert headers["x-dlq-error-class"] == b"UnknownShop"
    assert stranger.encode() in headers["x-dlq-error-message"]
    assert await tiers_by_shop(db, "tiering", customer) == {}


async def net_by_shop(db: asyncpg.Pool, customer: str) -> dict[str, Any]:
    rows = await db.fetch(
        """SELECT shop_id, sum(added - removed) AS net FROM tiering.contributions
           WHERE customer_id = $1 GROUP BY 1""",
        customer,
    )
    return {r["shop_id"]: r["net"] for r in rows}


async def test_a_backfill_of_one_shop_recomputes_its_customers_and_leaves_the_other_alone(
    shops: TieringService, db: asyncpg.Pool, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    await send(producer, paid(VN, customer, "6000000", "VND"), paid(US, customer, "600", "USD"))
    await eventually(
        lambda: tiers_by_shop(db, "tiering", customer), lambda t: t == {VN: "silver", US: "plus"}
    )
    # Both shops lose their contributions; the US shop's tier is set back as well.
    await db.execute("DELETE FROM tiering.contributions WHERE customer_id = $1", customer)
    await db.execute(
        """UPDATE tiering.customers SET tier = 'basic', earned_tier = 'basic', review_at = NULL
           WHERE shop_id = $1 AND customer_id = $2""",
        US,
        customer,
    )

    report = await backfill(
        db,
        kafka=infrastructure.kafka_bootstrap,
        programmes=two_shops(),
        shop_id=US,
        clock=SystemClock(),
        customers=[customer],
        progress=False,
    )

    assert (report.customers, report.changed) == (1, 1)
    assert await net_by_shop(db, customer) == {US: 600}
    assert await tiers_by_shop(db, "tiering", customer) == {VN: "silver", US: "plus"}


T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def incoming(event: CloudEvent[Any], offset: int) -> Incoming:
    parsed = to_incoming(consumer_record(encode_event(event), offset=offset))
    assert isinstance(parsed, Incoming)
    return parsed


async def test_one_batch_of_two_shops_and_their_reviews_stay_apart(
    db: asyncpg.Pool, tiering_schema: str
) -> None:
    """Both shops' orders for one customer in one batch; the USD shop's second 30-day review
    (a period without orders) drops its tier while the VND shop's 365-day window keeps its own."""
    schema, customer, programmes = tiering_schema, unique("c"), two_shops()
    batch = [
        incoming(paid(VN, customer, "6000000", "VND", at=T0), 0),
        incoming(paid(US, customer, "600", "USD", at=T0), 1),
    ]

    async with db.acquire() as conn, conn.transaction():
        refused = await apply_activity(
            conn, batch, programmes=programmes, schema=schema, clock=FixedClock(T0)
        )
    upgraded = await tiers_by_shop(db, schema, customer)
    async with db.acquire() as conn, conn.transaction():
        await evaluate_due(
            conn, programmes=programmes, schema=schema, now=T0 + timedelta(days=70), limit=100
        )
    reviewed = await tiers_by_shop(db, schema, customer)
    published = [
        json.loads(v)
        for v in await db.fetchval(
            f"SELECT array_agg(p ORDER BY id) FROM {schema}.outbox, unnest(payloads) AS p"
        )
    ]

    assert refused == []
    assert upgraded == {VN: "silver", US: "plus"}
    assert reviewed == {VN: "silver", US: "basic"}
    moves = [
        (e["type"], e["data"]["shop_id"], e["data"].get("to_tier", e["data"].get("tier")))
        for e in published
    ]
    assert ("tier.changed", US, "basic") in moves
    assert [m for m in moves if m[1] == VN] == [("tier.changed", VN, "silver")]

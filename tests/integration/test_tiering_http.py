"""The tiering HTTP API on the real database: standing, progress, history, manual tiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import TopicTail, eventually, order_paid, unique
from tiering_tools import ADMIN_API_KEY, TieringService, body, loyalty, net_total, publish

ADMIN = {"X-API-Key": ADMIN_API_KEY}


async def test_tier_progress_and_history_describe_a_customer(
    tiering: TieringService, db: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await publish(producer, order_paid(customer, total="6000000"))
    await eventually(lambda: net_total(db, customer), lambda t: t == 6_000_000)
    await eventually(
        lambda: tiering.api.get(f"/v1/customers/{customer}/tier"),
        lambda r: r.status_code == 200 and r.json()["tier"] == "silver",
    )

    tier = (await tiering.api.get(f"/v1/customers/{customer}/tier")).json()
    progress = (await tiering.api.get(f"/v1/customers/{customer}/progress")).json()
    history = (await tiering.api.get(f"/v1/customers/{customer}/tier-history")).json()

    assert (tier["tier_name"], tier["multiplier"], tier["basis"]) == ("Silver", "1.25", "spend")
    assert tier["qualifying"] == [{"amount": "6000000", "currency": "VND"}]
    assert tier["benefits"][0] == "25% more points on every order"
    assert tier["review_at"] is not None
    assert progress["next"]["tier"] == "gold"
    assert progress["next"]["needed"] == [{"amount": "9000000", "currency": "VND"}]
    assert progress["next"]["deadline"] is None
    assert progress["keep"]["tier"] == "silver"
    assert progress["keep"]["needed"] == [{"amount": "0", "currency": "VND"}]
    assert progress["keep"]["deadline"] == tier["review_at"]
    [change] = history["items"]
    assert (change["from_tier"], change["to_tier"], change["reason"]) == (
        "member",
        "silver",
        "qualified",
    )
    assert change["qualifying"] == {"amount": "6000000", "currency": "VND"}


async def test_unknown_customer_is_a_404_problem(tiering: TieringService) -> None:
    response = await tiering.api.get(f"/v1/customers/{unique('nobody')}/tier")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert "has no tier yet" in response.json()["detail"]


async def test_manual_tier_needs_the_admin_key_and_a_known_tier(tiering: TieringService) -> None:
    customer = unique("c")
    url = f"/v1/customers/{customer}/manual-tier"
    good = {"tier": "gold", "ends_at": "2099-01-01T00:00:00Z", "reason": "VIP guest"}

    no_key = await tiering.api.put(url, json=good, headers={"X-API-Key": ""})
    wrong_key = await tiering.api.put(url, json=good, headers={"X-API-Key": "guess"})
    unknown_tier = await tiering.api.put(url, json={**good, "tier": "diamond"}, headers=ADMIN)
    naive_time = await tiering.api.put(
        url, json={**good, "ends_at": "2099-01-01T00:00:00"}, headers=ADMIN
    )
    in_the_past = await tiering.api.put(
        url, json={**good, "ends_at": "2000-01-01T00:00:00Z"}, headers=ADMIN
    )

    assert (no_key.status_code, wrong_key.status_code) == (401, 401)
    assert no_key.headers["content-type"] == "application/problem+json"
    for response, location in (
        (unknown_tier, "body.tier"),
        (naive_time, "body.ends_at"),
        (in_the_past, "body.ends_at"),
    ):
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["location"] == location
    missing = await tiering.api.get(f"/v1/customers/{customer}/tier")
    assert missing.status_code == 404


async def test_manual_tier_is_a_floor_until_its_end_date(
    tiering: TieringService,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    customer = unique("c")
    mine = lambda record: record.key == customer.encode()  # noqa: E731
    await publish(producer, order_paid(customer, total="6000000"))
    await eventually(lambda: net_total(db, customer), lambda t: t == 6_000_000)

    ends_at = datetime.now(UTC) + timedelta(days=30)

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tiers:
        response = await tiering.api.put(
            f"/v1/customers/{customer}/manual-tier",
            json={"tier": "platinum", "ends_at": ends_at.isoformat(), "reason": "press"},
            headers=ADMIN,
        )
        [up] = await tiers.collect(mine, count=1)
        await loyalty("tiering", "evaluate", "--at", ends_at.isoformat(), "--customer", customer)
        [down] = await tiers.collect(mine, count=1)

    assert response.status_code == 200
    assert (response.json()["tier"], response.json()["earned_tier"]) == ("platinum", "silver")
    assert (body(up)["data"]["to_tier"], body(up)["data"]["reason"]) == ("platinum", "manual")
    assert body(down)["data"]["to_tier"] == "silver"
    assert body(down)["data"]["reason"] == "manual_ended"
    assert datetime.fromisoformat(body(down)["data"]["effective_at"]) == ends_at
    assert response.json()["floors"][0]["reason"] == "press"


async def test_openapi_document_lists_the_routes(tiering: TieringService) -> None:
    document = (await tiering.api.get("/openapi.json")).json()

    assert set(document["paths"]) == {
        "/v1/customers/{customer_id}/tier",
        "/v1/customers/{customer_id}/progress",
        "/v1/customers/{customer_id}/tier-history",
        "/v1/customers/{customer_id}/manual-tier",
    }
    assert "APIKeyHeader" in document["components"]["securitySchemes"]


async def test_bad_customer_id_is_a_422_problem(tiering: TieringService) -> None:
    response = await tiering.api.get("/v1/customers/a%20b/tier")

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["location"] == "path.customer_id"

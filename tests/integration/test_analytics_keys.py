"""Every analytics route needs an X-API-Key with the `read` scope: a shop's key sees its own
shop's report only, a platform key any shop's or the whole platform's. The keys are the shops
service's, reaching analytics through loyalty.shops, and the configured platform key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from analytics_support import ANALYTICS_KEY
from infrastructure import Endpoints
from notify_support import event_of
from shops_support import ShopsService, shops_service
from support import encoded, eventually, unique

SIGNED_UP = datetime(2025, 3, 10, 3, 0, tzinfo=UTC)
MARCH = {"from": "2025-03-01", "to": "2025-04-01"}


@pytest.fixture(scope="module")
async def shops(infrastructure: Endpoints) -> AsyncIterator[ShopsService]:
    async with shops_service(infrastructure) as service:
        yield service


async def routes(analytics: httpx.AsyncClient) -> list[str]:
    """Every GET route of analytics' OpenAPI document."""
    spec = (await analytics.get("/openapi.json")).json()
    return sorted(path for path, operations in spec["paths"].items() if "get" in operations)


# The routes the tests below run over: every route of the document (checked first).
ROUTES = ["/v1/overview", "/v1/report", "/v1/report.html"]


async def test_the_parametrised_routes_are_every_route_of_the_document(
    analytics: httpx.AsyncClient,
) -> None:
    assert await routes(analytics) == ROUTES
    spec = (await analytics.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert [s["name"] for s in schemes.values()] == ["X-API-Key"]
    for path in ROUTES:
        operation = spec["paths"][path]["get"]
        assert operation["security"], path
        assert {"401", "403", "404"} <= set(operation["responses"]), path


async def signed_up_at(
    producer: AIOKafkaProducer, db: asyncpg.Pool, shop: str, customer: str
) -> None:
    data = {
        "customer_id": customer,
        "email": f"{customer}@mail.example",
        "name": "Lê Văn An",
        "locale": "vi-VN",
        "time_zone": "Asia/Ho_Chi_Minh",
        "consent": {"email": False, "push": False},
        "shop_id": shop,
    }
    event = event_of("customer.signed_up", customer, data, SIGNED_UP)
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM analytics.customers WHERE shop_id = $1 AND customer_id = $2",
            shop,
            customer,
        ),
        lambda n: n == 1,
    )


@pytest.fixture(scope="module")
async def two_shops(
    analytics: httpx.AsyncClient,
    shops: ShopsService,
    producer: AIOKafkaProducer,
    db: asyncpg.Pool,
) -> dict[str, Any]:
    """Two shops with the same customer id signed up at each, and keys of every kind, known to
    the running analytics (one of them revoked)."""
    shop_a, shop_b = unique("a"), unique("b")
    await shops.new_shop(shop_a)
    await shops.new_shop(shop_b, "us-shop")
    customer = unique("an")
    for shop in (shop_a, shop_b):
        await signed_up_at(producer, db, shop, customer)
    keys = {
        "reader_a": await shops.new_key(shop_a, ["read"]),
        "admin_a": await shops.new_key(shop_a, ["admin", "redeem"]),
        "reader_b": await shops.new_key(shop_b, ["read"]),
        "platform": await shops.new_key(None, ["platform"]),
        "revoked": await shops.new_key(shop_a, ["read"]),
    }

    async def answers(key: str) -> int:
        found = await analytics.get("/v1/report", params=MARCH, headers={"X-API-Key": key})
        return found.status_code

    for key in keys.values():
        await eventually(partial(answers, key), lambda status: status != 401)
    listed = (await shops.api.get(f"/v1/shops/{shop_a}/keys", headers=shops.platform)).json()
    revoked_id = next(k["key_id"] for k in listed if k["prefix"] == keys["revoked"][:12])
    deleted = await shops.api.delete(
        f"/v1/shops/{shop_a}/keys/{revoked_id}", headers=shops.platform
    )
    assert deleted.status_code == 200
    await eventually(lambda: answers(keys["revoked"]), lambda status: status == 401)
    return {"a": shop_a, "b": shop_b, **keys}


async def ask(analytics: httpx.AsyncClient, path: str, key: str, **query: str) -> httpx.Response:
    return await analytics.get(path, params={**MARCH, **query}, headers={"X-API-Key": key})


def problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ROUTES)
async def test_no_key_an_unknown_key_and_a_revoked_key_are_401(
    analytics: httpx.AsyncClient, two_shops: dict[str, Any], path: str
) -> None:
    transport = analytics._transport  # a client without the fixture's default key
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as bare:
        problem(await bare.get(path, params={**MARCH, "shop": two_shops["a"]}), 401)
    problem(await ask(analytics, path, "lk_" + "x" * 43, shop=two_shops["a"]), 401)
    problem(await ask(analytics, path, two_shops["revoked"]), 401)
    problem(await ask(analytics, path, two_shops["revoked"], shop=two_shops["a"]), 401)


@pytest.mark.parametrize("path", ROUTES)
async def test_a_key_without_the_read_scope_is_403(
    analytics: httpx.AsyncClient, two_shops: dict[str, Any], path: str
) -> None:
    problem(await ask(analytics, path, two_shops["admin_a"]), 403)
    problem(await ask(analytics, path, two_shops["admin_a"], shop=two_shops["a"]), 403)


@pytest.mark.parametrize("path", ROUTES)
async def test_a_shops_key_sees_its_own_shop_only(
    analytics: httpx.AsyncClient, two_shops: dict[str, Any], path: str
) -> None:
    shop_a, shop_b = two_shops["a"], two_shops["b"]
    own = await ask(analytics, path, two_shops["reader_a"])
    named_own = await ask(analytics, path, two_shops["reader_a"], shop=shop_a)
    assert own.status_code == named_own.status_code == 200, own.text
    # The same customer id is a customer of shop B too: A's key never reaches B's report.
    problem(await ask(analytics, path, two_shops["reader_a"], shop=shop_b), 404)
    problem(await ask(analytics, path, two_shops["reader_b"], shop=shop_a), 404)
    # A shop that does not exist answers as another shop does: nothing tells them apart.
    nowhere = await ask(analytics, path, two_shops["reader_a"], shop=unique("nowhere"))
    problem(nowhere, 404)
    assert (
        nowhere.json()["detail"]
        == (await ask(analytics, path, two_shops["reader_a"], shop=shop_b)).json()["detail"]
    )
    if path == "/v1/report":  # without `shop`, the key's shop's report
        for report in (own.json(), named_own.json()):
            assert report["query"]["segment"]["shop"] == shop_a
            assert report["retention"]["customers_at_end"] == 1
    else:
        assert f"{shop_a}" in own.text and f"{shop_b}" not in own.text


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("platform", ["platform", "configured"])
async def test_a_platform_key_sees_any_shop_or_the_whole_platform(
    analytics: httpx.AsyncClient, two_shops: dict[str, Any], path: str, platform: str
) -> None:
    key = ANALYTICS_KEY if platform == "configured" else two_shops["platform"]
    for shop in (two_shops["a"], two_shops["b"]):
        one = await ask(analytics, path, key, shop=shop)
        assert one.status_code == 200, one.text
        if path == "/v1/report":
            assert one.json()["query"]["segment"]["shop"] == shop
            assert one.json()["retention"]["customers_at_end"] == 1
    everything = await ask(analytics, path, key)
    assert everything.status_code == 200, everything.text
    if path == "/v1/report":
        assert everything.json()["query"]["segment"]["shop"] is None
        assert everything.json()["retention"]["customers_at_end"] >= 2

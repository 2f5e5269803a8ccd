"""Every route of the earn API, from its OpenAPI document: no key or an unknown or revoked one
is a 401, a key without the route's scope a 403, a shop's key naming another shop a 404; a
shop's key sees its shop's customer, never the other shop's of the same id."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from earn_api_support import EarnApi, earn_api, key
from infrastructure import Endpoints
from support import unique

from shared.api_keys import key_sha256

SCOPES = ("read", "redeem", "admin")
US_EARN = Path("services/shops/templates/us-shop/earn.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
async def api(infrastructure: Endpoints) -> AsyncIterator[EarnApi]:
    async with earn_api(infrastructure) as service:
        yield service


def shop_key(api: EarnApi, shop_id: str, *scopes: str, revoked: bool = False) -> str:
    """A key of `shop_id`, known to earn's directory as loyalty.shops would make it known."""
    secret = f"lk_{unique('secret')}"
    api.directory.key_known(
        {
            "key_id": unique("key"),
            "shop_id": shop_id,
            "prefix": secret[:12],
            "key_sha256": key_sha256(secret),
            "scopes": list(scopes),
            "revoked_at": datetime.now(UTC) if revoked else None,
        }
    )
    return secret


def routes(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    ]


def scope_of(method: str, path: str) -> str:
    if path.startswith("/v1/admin/"):
        return "admin"
    return "read" if method == "GET" else "redeem"


def request(api: EarnApi, method: str, path: str, customer: str, **headers: str) -> httpx.Request:
    """A well-formed request of the route, for `customer`, without the client's default key."""
    url = re.sub(r"\{customer_id\}", customer, path)
    url = re.sub(r"\{[a-z_]+\}", unique("id"), url)
    bodies: dict[str, Any] = {
        "/v1/customers/{customer_id}/redemptions": {"reward": "free-shipping"},
        "/v1/customers/{customer_id}/store-credit/spend": {
            "currency": "USD",
            "amount": "1.00",
            "order_id": unique("o"),
        },
        "/v1/admin/customers/{customer_id}/adjustments": {"points": 1, "reason": "test"},
        "/v1/admin/bulk-grants": {
            "batch_id": unique("b"),
            "reason": "test",
            "grants": [{"customer_id": customer, "points": 1}],
        },
    }
    built = api.client.build_request(
        method,
        url,
        json=bodies.get(path) if method == "POST" else None,
        headers={"Idempotency-Key": key(), **headers},
    )
    del built.headers["X-API-Key"]
    built.headers.update(headers)
    return built


@pytest.fixture(scope="module")
async def document(api: EarnApi) -> dict[str, Any]:
    answer = await api.client.get("/openapi.json")
    body: dict[str, Any] = answer.json()
    return body


async def test_every_route_is_documented_as_needing_a_key(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {"X-API-Key"}
    assert len(routes(document)) >= 10
    for method, path in routes(document):
        operation = document["paths"][path][method.lower()]
        assert operation.get("security"), (method, path)
        assert {"401", "403", "404"} <= set(operation["responses"]), (method, path)


async def test_every_route_refuses_a_missing_unknown_or_revoked_key(
    api: EarnApi, document: dict[str, Any]
) -> None:
    customer = unique("c")
    revoked = shop_key(api, "default", *SCOPES, revoked=True)
    answers = {}
    for method, path in routes(document):
        for given in ({}, {"X-API-Key": "lk_unknown"}, {"X-API-Key": revoked}):
            answer = await api.client.send(request(api, method, path, customer, **given))
            answers[method, path, tuple(given.values())] = answer.status_code
    assert set(answers.values()) == {401}, answers


async def test_every_route_refuses_a_key_without_its_scope(
    api: EarnApi, document: dict[str, Any]
) -> None:
    customer = unique("c")
    answers = {}
    for method, path in routes(document):
        needed = scope_of(method, path)
        others = shop_key(api, "default", *(s for s in SCOPES if s != needed))
        sent = request(api, method, path, customer, **{"X-API-Key": others})
        answer = await api.client.send(sent)
        answers[method, path] = (answer.status_code, needed in answer.json()["detail"])
    assert set(answers.values()) == {(403, True)}, answers


async def test_a_shop_key_naming_another_shop_gets_404_on_every_route(
    api: EarnApi, document: dict[str, Any]
) -> None:
    customer = unique("c")
    other = unique("shop")
    await api.grant(customer, 10)  # the platform key, the shop default
    await admin_grant(api, other, customer, 70)
    mine = shop_key(api, other, *SCOPES)
    answers = {}
    for method, path in routes(document):
        sent = request(api, method, path, customer, **{"X-API-Key": mine, "X-Shop-Id": "default"})
        answers[method, path] = (await api.client.send(sent)).status_code
    assert set(answers.values()) == {404}, answers
    assert await api.balance(customer) == 10  # nothing reached shop default's customer


async def test_a_shop_key_sees_its_shops_customer_of_a_shared_id(api: EarnApi) -> None:
    customer = unique("c")
    other = unique("shop")
    api.directory.programme_known(
        {
            "shop_id": other,
            "kind": "earn",
            "version": 1,
            "effective_from": datetime.now(UTC),
            "toml": US_EARN,
        }
    )
    await api.grant(customer, 10)
    await admin_grant(api, other, customer, 70)
    mine = shop_key(api, other, "read")
    balance = request(
        api, "GET", "/v1/customers/{customer_id}/balance", customer, **{"X-API-Key": mine}
    )
    rewards = request(api, "GET", "/v1/rewards", customer, **{"X-API-Key": mine})
    default_rewards = await api.client.get("/v1/rewards")

    seen = await api.client.send(balance)
    catalogue = await api.client.send(rewards)

    assert seen.json()["points"]["available"] == 70
    assert catalogue.status_code == 200
    assert catalogue.json() != default_rewards.json()  # the shop's own programme's rewards


async def admin_grant(api: EarnApi, shop_id: str, customer: str, points: int) -> None:
    """Points for `customer` at `shop_id`, through the platform key naming the shop."""
    answer = await api.client.post(
        f"/v1/admin/customers/{customer}/adjustments",
        json={"points": points, "reason": "test"},
        headers={"Idempotency-Key": key(), "X-Shop-Id": shop_id},
    )
    assert answer.status_code == 201, answer.text

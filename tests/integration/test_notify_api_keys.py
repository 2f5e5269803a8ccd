"""Every keyed route of notify's OpenAPI document (customers, templates) answers only a valid
key with its scope, for the key's own shop: 401 without one (or with one unknown or revoked),
403 without the scope, 404 for another shop or another shop's customer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from notify_support import NOTIFY_API_KEY, notify_customer, signed_up
from pydantic import SecretStr
from shops_support import ShopsService, shops_service
from support import encoded, eventually, own_groups, running, unique

from services.notify.bootstrap import bootstrap
from services.notify.settings import NotifySettings
from services.shops import handlers
from shared.events.shops import Scope

VN, US = unique("vn-shop"), unique("us-shop")
CUSTOMER = notify_customer()  # a customer of both shops
ONLY_AT_US = notify_customer()
T0 = datetime(2031, 10, 5, 3, 0, tzinfo=UTC)
# Notify applies no event before it has read loyalty.shops to its end: on a broker shared by
# many runs, whose topic holds thousands of shops' records, that takes most of a minute.
CATCH_UP_S = 180.0


def operations() -> list[tuple[str, str]]:
    """(method, path) of every route of notify's document that needs a key."""
    app, _runtime = bootstrap(NotifySettings(unsubscribe_secret=SecretStr("s" * 40)))
    document = app.api.openapi()  # type: ignore[attr-defined]
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete"} and operation.get("security")
    ]


OPERATIONS = operations()


@dataclass(frozen=True)
class Keys:
    vn: str  # read, admin at VN
    us: str  # read, admin at US
    vn_redeem: str  # redeem only
    vn_read: str  # no admin
    vn_revoked: str


@dataclass(frozen=True)
class World:
    api: httpx.AsyncClient  # sends no key unless told
    keys: Keys
    messages: dict[tuple[str, str], int]  # (shop, customer) -> the welcome's message id


async def new_key(shops: ShopsService, shop_id: str, scopes: list[Scope]) -> tuple[str, str]:
    async with shops.pool.acquire() as conn:
        made = await handlers.create_key(
            conn, handlers.Change("test", datetime.now(UTC)), shop_id=shop_id, scopes=scopes
        )
    return made.key_id, made.secret


def key(secret: str, shop: str | None = None) -> dict[str, str]:
    return {"X-API-Key": secret} | ({} if shop is None else {"X-Shop-Id": shop})


async def welcome_of(db: asyncpg.Pool, shop: str, customer: str) -> int | None:
    found: int | None = await db.fetchval(
        "SELECT id FROM notify.scheduled WHERE shop_id = $1 AND customer_id = $2",
        shop,
        customer,
    )
    return found


@pytest.fixture(scope="module")
async def world(
    infrastructure: Endpoints,
    notify_settings: NotifySettings,
    producer: AIOKafkaProducer,
    db: asyncpg.Pool,
) -> AsyncIterator[World]:
    """The shops service and notify running; VN and US made with the shops use cases, their
    keys known to notify, CUSTOMER signed up at both and ONLY_AT_US at US."""
    settings = notify_settings.model_copy(update={"consumer_group_prefix": own_groups()})
    app, runtime = bootstrap(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        shops_service(infrastructure) as shops,
        running(app, runtime),
        httpx.AsyncClient(transport=transport, base_url="http://notify") as api,
    ):
        await shops.new_shop(VN, "vn-fashion")
        await shops.new_shop(US, "us-shop")
        _, vn = await new_key(shops, VN, ["read", "admin"])
        _, us = await new_key(shops, US, ["read", "admin"])
        _, vn_redeem = await new_key(shops, VN, ["redeem"])
        revoked_id, vn_revoked = await new_key(shops, VN, ["read", "admin"])
        async with shops.pool.acquire() as conn:
            await handlers.revoke_key(
                conn, handlers.Change("test", datetime.now(UTC)), shop_id=VN, key_id=revoked_id
            )
        _, vn_read = await new_key(shops, VN, ["read"])
        # Each shop's changes come in order: once notify knows the last key of each shop, it
        # knows the revocation too.
        probe = f"/v1/customers/{unique('nobody')}"
        for secret in (us, vn_read):
            await eventually(partial(api.get, probe, headers=key(secret)), _not_401)
        messages: dict[tuple[str, str], int] = {}
        for shop, customer in ((VN, CUSTOMER), (US, CUSTOMER), (US, ONLY_AT_US)):
            event = signed_up(customer, T0, email=f"{customer}@mail.example", shop_id=shop)
            await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
            found = await eventually(
                partial(welcome_of, db, shop, customer), _is_id, timeout=CATCH_UP_S
            )
            assert found is not None
            messages[shop, customer] = found
        yield World(api, Keys(vn, us, vn_redeem, vn_read, vn_revoked), messages)


def _not_401(response: httpx.Response) -> bool:
    return response.status_code != 401


def _is_id(found: int | None) -> bool:
    return found is not None


async def call(
    world: World,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    shop: str = VN,
    customer: str = CUSTOMER,
) -> httpx.Response:
    message = world.messages.get((shop, customer), world.messages[US, customer])
    url = (
        path.replace("{customer_id}", customer)
        .replace("{message_id}", str(message))
        .replace("{name}", "welcome")
    )
    if path.startswith("/v1/templates/"):
        return await world.api.post(url, json={"locale": "vi-VN"}, headers=headers)
    if method == "GET":
        params = {"q": customer} if path == "/v1/customers" else {}
        return await world.api.get(url, params=params, headers=headers)
    body: dict[str, Any] = {"channel": "push"}  # unsubscribe (resend reads no body)
    headers = headers | {"Idempotency-Key": unique("k")}
    return await world.api.request(method, url, json=body, headers=headers)


def scope_of(method: str, path: str) -> Scope:
    return "read" if method == "GET" or path.startswith("/v1/templates/") else "admin"


def test_the_document_lists_the_keyed_routes_and_says_they_need_a_key() -> None:
    app, _runtime = bootstrap(NotifySettings(unsubscribe_secret=SecretStr("s" * 40)))
    document = app.api.openapi()  # type: ignore[attr-defined]
    schemes = document["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {"X-API-Key"}
    assert set(OPERATIONS) == {
        ("GET", "/v1/customers"),
        ("GET", "/v1/customers/{customer_id}"),
        ("GET", "/v1/customers/{customer_id}/messages"),
        ("POST", "/v1/customers/{customer_id}/messages/{message_id}/resend"),
        ("POST", "/v1/customers/{customer_id}/unsubscribe"),
        ("GET", "/v1/templates"),
        ("POST", "/v1/templates/{name}/preview"),
    }
    for method, path in OPERATIONS:
        operation = document["paths"][path][method.lower()]
        assert {"401", "403", "404"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_a_route_answers_only_a_valid_key_with_its_scope_for_its_own_shop(
    world: World, method: str, path: str
) -> None:
    keys = world.keys
    lacking = keys.vn_redeem if scope_of(method, path) == "read" else keys.vn_read

    no_key = await call(world, method, path, {})
    unknown = await call(world, method, path, key("lk_" + "x" * 43))
    revoked = await call(world, method, path, key(keys.vn_revoked))
    no_scope = await call(world, method, path, key(lacking))
    other_shop = await call(world, method, path, key(keys.vn, US))
    at_vn = await call(world, method, path, key(keys.vn))
    at_us = await call(world, method, path, key(keys.us), shop=US)
    at_vn_named = await call(world, method, path, key(keys.vn, VN))
    operator_at_us = await call(world, method, path, key(NOTIFY_API_KEY, US), shop=US)
    other_customer = await call(world, method, path, key(keys.vn), customer=ONLY_AT_US)

    assert (no_key.status_code, unknown.status_code, revoked.status_code) == (401, 401, 401)
    assert no_scope.status_code == 403
    assert other_shop.status_code == 404
    refused = [no_key, unknown, revoked, no_scope, other_shop]
    if path == "/v1/customers":
        # A search finds nobody of another shop.
        assert other_customer.json()["items"] == []
        assert [c["customer_id"] for c in at_vn.json()["items"]] == [CUSTOMER]
    elif "{customer_id}" in path:
        assert other_customer.status_code == 404
        refused.append(other_customer)
    assert {r.headers["content-type"] for r in refused} == {"application/problem+json"}
    ok = 202 if path.endswith("/resend") else 200
    answers = [r.status_code for r in (at_vn, at_us, at_vn_named, operator_at_us)]
    assert answers == [ok] * 4, at_vn.text

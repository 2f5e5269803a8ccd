"""Tiering with shops made by the shops service: each shop's ladder (its published tier
programme) applies to the same customer id, a later version only to events after it starts,
and every route takes the caller's shop from its X-API-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from shops_support import ShopsService, shops_service
from support import eventually, order_paid, running, unique
from tiering_tools import ADMIN_API_KEY, loyalty, tiering_settings

from services.shops import handlers
from services.tiering.bootstrap import bootstrap
from services.tiering.settings import TieringSettings
from shared.events import CloudEvent, encode_event
from shared.events.shops import Scope

VN, US = unique("vn-shop"), unique("us-shop")
CUSTOMER = unique("c")  # a customer of both shops
ONLY_AT_US = unique("c")


def operations() -> list[tuple[str, str]]:
    """(method, path) of every route of tiering's OpenAPI document."""
    app, _runtime = bootstrap(TieringSettings())
    document = app.api.openapi()  # type: ignore[attr-defined]
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    ]


OPERATIONS = operations()


def scope_of(method: str) -> Scope:
    return "read" if method == "GET" else "admin"


@dataclass(frozen=True)
class Keys:
    vn: str  # read, redeem, admin at VN
    us: str  # read, admin at US
    vn_redeem: str  # redeem only
    vn_read_redeem: str  # no admin
    vn_revoked: str


@dataclass(frozen=True)
class World:
    shops: ShopsService
    api: httpx.AsyncClient  # sends no key unless told
    keys: Keys


async def new_key(shops: ShopsService, shop_id: str, scopes: list[Scope]) -> tuple[str, str]:
    async with shops.pool.acquire() as conn:
        made = await handlers.create_key(
            conn, handlers.Change("test", datetime.now(UTC)), shop_id=shop_id, scopes=scopes
        )
    return made.key_id, made.secret


def at_shop(shop_id: str, event: CloudEvent[Any]) -> CloudEvent[Any]:
    return event.model_copy(update={"data": event.data.model_copy(update={"shop_id": shop_id})})


async def send(producer: AIOKafkaProducer, *events: CloudEvent[Any]) -> None:
    for event in events:
        await producer.send_and_wait("shop.orders", encode_event(event), key=event.subject.encode())


async def tiers_by_shop(db: asyncpg.Pool, customer: str) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT shop_id, tier FROM tiering.customers WHERE customer_id = $1", customer
    )
    return {r["shop_id"]: r["tier"] for r in rows}


def key(secret: str, shop: str | None = None) -> dict[str, str]:
    return {"X-API-Key": secret} | ({} if shop is None else {"X-Shop-Id": shop})


@pytest.fixture(scope="module")
async def world(
    infrastructure: Endpoints, producer: AIOKafkaProducer, db: asyncpg.Pool
) -> AsyncIterator[World]:
    """The shops service and tiering running; VN (vn-fashion) and US (us-shop) made with the
    shops use cases, their keys known to tiering, CUSTOMER tiered at both."""
    app, runtime = bootstrap(tiering_settings(infrastructure))
    transport = httpx.ASGITransport(app=app)
    async with (
        # Versions start a second after their publication, so that a later one can start soon.
        shops_service(infrastructure, shops_effective_lead_s=1) as shops,
        running(app, runtime),  # its groups begin at the topics' ends: started first
        httpx.AsyncClient(transport=transport, base_url="http://tiering") as api,
    ):
        await shops.new_shop(VN, "vn-fashion")
        await shops.new_shop(US, "us-shop")
        _, vn = await new_key(shops, VN, ["read", "redeem", "admin"])
        _, us = await new_key(shops, US, ["read", "admin"])
        _, vn_redeem = await new_key(shops, VN, ["redeem"])
        revoked_id, vn_revoked = await new_key(shops, VN, ["read", "admin"])
        async with shops.pool.acquire() as conn:
            await handlers.revoke_key(
                conn, handlers.Change("test", datetime.now(UTC)), shop_id=VN, key_id=revoked_id
            )
        _, vn_read_redeem = await new_key(shops, VN, ["read", "redeem"])
        # Each shop's changes come in order on its partition: once tiering knows the last key
        # made at each shop, it knows the shop's ladder and (at VN) the revocation too.
        probe = f"/v1/customers/{unique('nobody')}/tier"
        for secret in (us, vn_read_redeem):
            await eventually(partial(api.get, probe, headers=key(secret)), _not_401)
        await send(
            producer,
            at_shop(VN, order_paid(CUSTOMER, total="6000000", currency="VND")),
            at_shop(US, order_paid(CUSTOMER, total="1600", currency="USD")),
            at_shop(US, order_paid(ONLY_AT_US, total="100", currency="USD")),
        )
        await eventually(
            lambda: tiers_by_shop(db, CUSTOMER), lambda t: t == {VN: "silver", US: "gold"}
        )
        await eventually(lambda: tiers_by_shop(db, ONLY_AT_US), lambda t: t == {US: "member"})
        keys = Keys(vn, us, vn_redeem, vn_read_redeem, vn_revoked)
        yield World(shops, api, keys)


def _not_401(response: httpx.Response) -> bool:
    return response.status_code != 401


async def call(
    world: World, method: str, path: str, headers: dict[str, str], customer: str = CUSTOMER
) -> httpx.Response:
    url = path.replace("{customer_id}", customer)
    if method == "GET":
        return await world.api.get(url, headers=headers)
    # The one route that changes state: a manual tier, valid at both shops' ladders.
    ends_at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {"tier": "gold", "ends_at": ends_at, "reason": "key test"}
    return await world.api.request(method, url, json=body, headers=headers)


def test_the_document_lists_the_routes_and_says_they_need_a_key() -> None:
    app, _runtime = bootstrap(TieringSettings())
    document = app.api.openapi()  # type: ignore[attr-defined]
    schemes = document["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"apiKey"}
    assert {s["name"] for s in schemes.values()} == {"X-API-Key"}
    assert {p for _m, p in OPERATIONS} == {
        "/v1/customers/{customer_id}/tier",
        "/v1/customers/{customer_id}/progress",
        "/v1/customers/{customer_id}/tier-history",
        "/v1/customers/{customer_id}/manual-tier",
    }
    for method, path in OPERATIONS:
        operation = document["paths"][path][method.lower()]
        assert operation["security"], (method, path)
        assert {"401", "403", "404"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_a_route_answers_only_a_valid_key_with_its_scope_for_its_own_shop(
    world: World, method: str, path: str
) -> None:
    keys = world.keys
    scope = scope_of(method)
    lacking = keys.vn_redeem if scope == "read" else keys.vn_read_redeem

    no_key = await call(world, method, path, {})
    unknown = await call(world, method, path, key("lk_" + "x" * 43))
    revoked = await call(world, method, path, key(keys.vn_revoked))
    no_scope = await call(world, method, path, key(lacking))
    other_shop = await call(world, method, path, key(keys.vn, US))
    at_vn = await call(world, method, path, key(keys.vn))
    at_us = await call(world, method, path, key(keys.us))
    at_vn_named = await call(world, method, path, key(keys.vn, VN))
    operator_at_us = await call(world, method, path, key(ADMIN_API_KEY, US))

    assert (no_key.status_code, unknown.status_code, revoked.status_code) == (401, 401, 401)
    assert no_scope.status_code == 403
    assert other_shop.status_code == 404
    refused = [no_key, unknown, revoked, no_scope, other_shop]
    if method == "GET":
        # A customer of US only is nobody at VN. (A manual tier may be given to a customer
        # with no activity yet: PUT sets it at the key's shop, which other_shop shows.)
        other_customer = await call(world, method, path, key(keys.vn), customer=ONLY_AT_US)
        assert other_customer.status_code == 404
        refused.append(other_customer)
    assert {r.headers["content-type"] for r in refused} == {"application/problem+json"}
    assert [r.status_code for r in (at_vn, at_us, at_vn_named, operator_at_us)] == [200] * 4
    if path.endswith(("/tier", "/manual-tier")):
        # The same customer id: two standings, each in its shop's currency.
        assert [q["currency"] for q in at_vn.json()["qualifying"]] == ["VND"]
        assert [q["currency"] for q in at_us.json()["qualifying"]] == ["USD"]


SECOND = timedelta(seconds=1)
LOWER_LADDER = """
time_zone = "America/New_York"
basis = "spend"
warn_days = 30

[window]
kind = "calendar_year"

[downgrade]
mode = "end_of_period"
steps = "one"

[[tiers]]
code = "member"
name = "Member"

[[tiers]]
code = "silver"
name = "Silver"
multiplier = 1.25
enter = { USD = "100" }
keep = { USD = "80" }

[[tiers]]
code = "gold"
name = "Gold"
multiplier = 1.5
enter = { USD = "1500" }
keep = { USD = "1200" }
"""


async def test_a_later_ladder_version_applies_to_events_after_it_starts_only(
    world: World, producer: AIOKafkaProducer, db: asyncpg.Pool
) -> None:
    before, after = unique("c"), unique("c")
    now = datetime.now(UTC)
    starts = now + timedelta(seconds=3)
    async with world.shops.pool.acquire() as conn:
        version = await handlers.publish_version(
            conn,
            handlers.Change("test", now, lead=timedelta(seconds=1)),
            shop_id=US,
            kind="tiers",
            text=LOWER_LADDER,
            effective_from=starts,
            reason="a lower silver",
        )
    assert version.version == 2
    await eventually(
        lambda: db.fetchval(
            "SELECT max(version) FROM tiering.shop_programmes WHERE shop_id = $1 AND kind = $2",
            US,
            "tiers",
        ),
        lambda found: found == 2,
    )
    await eventually(_now, lambda t: t > starts + timedelta(seconds=1))

    await send(
        producer,
        # 150 USD: below silver (500) under version 1, above it (100) under version 2.
        at_shop(
            US, order_paid(before, total="150", currency="USD", at=starts - timedelta(seconds=2))
        ),
        at_shop(
            US, order_paid(after, total="150", currency="USD", at=starts + timedelta(seconds=1))
        ),
    )

    await eventually(lambda: tiers_by_shop(db, before), lambda t: t == {US: "member"})
    await eventually(lambda: tiers_by_shop(db, after), lambda t: t == {US: "silver"})
    progress = await world.api.get(f"/v1/customers/{after}/progress", headers=key(world.keys.us))
    assert progress.status_code == 200, progress.text


async def _now() -> datetime:
    return datetime.now(UTC)


async def test_the_commands_run_the_versions_published_for_the_shop(
    world: World, producer: AIOKafkaProducer, db: asyncpg.Pool
) -> None:
    """`loyalty tiering evaluate|backfill --shop US` work with US's stored ladder: with the
    programme file alone, US would be a shop without a programme."""
    customer = unique("c")
    await send(producer, at_shop(US, order_paid(customer, total="600", currency="USD")))
    await eventually(lambda: tiers_by_shop(db, customer), lambda t: t == {US: "silver"})
    two_years_on = (datetime.now(UTC) + timedelta(days=800)).isoformat()

    evaluated = await loyalty(
        "tiering", "evaluate", "--shop", US, "--customer", customer, "--at", two_years_on
    )
    downgraded = await tiers_by_shop(db, customer)
    backfilled = await loyalty(
        "tiering", "backfill", "--no-progress", "--shop", US, "--customer", customer
    )

    assert "evaluated 1 customer(s)" in evaluated
    assert downgraded == {US: "member"}  # a calendar year without orders: one step down
    assert "1 customer(s) recomputed" in backfilled

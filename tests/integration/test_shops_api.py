"""The shops admin API against real PostgreSQL and Kafka: shops from templates, programme
versions (validate, publish, list, roll back, preview), keys, the audit trail, and keys that
never reach another shop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from infrastructure import Endpoints
from shops_support import ShopsService, shops_service
from support import TopicTail, unique

from shared.problems import PROBLEM

VERSIONS = "/v1/shops/{}/programmes/{}/versions"
EARN_DRAFT = """
time_zone = "Asia/Ho_Chi_Minh"

[currencies.VND]
per_amount = 5000
points = 1

[[products]]
categories = ["bo-suu-tap-moi"]
multiplier = 3
"""


@pytest.fixture(scope="module")
async def shops(infrastructure: Endpoints) -> AsyncIterator[ShopsService]:
    async with shops_service(infrastructure) as service:
        yield service


def events_of(records: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


async def test_a_platform_key_creates_a_shop_with_version_one_of_each_programme(
    shops: ShopsService, infrastructure: Endpoints
) -> None:
    shop = unique("fashion")
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.shops") as tail:
        created = await shops.new_shop(shop, "vn-fashion")
        records = await tail.collect(lambda r: r.key == shop.encode(), count=4)
    assert (created["currency"], created["time_zone"], created["locale"]) == (
        "VND",
        "Asia/Ho_Chi_Minh",
        "vi-VN",
    )
    events = events_of(records)
    assert [e["type"] for e in events] == ["shop.created"] + ["programme.published"] * 3
    assert {e["data"]["kind"] for e in events[1:]} == {"earn", "tiers", "messages"}
    assert all(e["subject"] == shop and e["data"]["version"] == 1 for e in events[1:])
    for kind in ("earn", "tiers", "messages"):
        listed = await shops.api.get(VERSIONS.format(shop, kind), headers=shops.platform)
        assert [v["version"] for v in listed.json()] == [1]
    again = await shops.api.post(
        "/v1/shops", json={"shop_id": shop, "template": "us-shop"}, headers=shops.platform
    )
    assert again.status_code == 409


async def test_the_us_template_is_in_dollars_in_new_york(shops: ShopsService) -> None:
    created = await shops.new_shop(unique("us"), "us-shop")
    assert (created["currency"], created["time_zone"], created["locale"]) == (
        "USD",
        "America/New_York",
        "en-US",
    )


async def test_publishing_a_version_announces_it_on_loyalty_shops(
    shops: ShopsService, infrastructure: Endpoints
) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    admin = shops.as_key(await shops.new_key(shop, ["admin"]))
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.shops") as tail:
        published = await shops.api.post(
            VERSIONS.format(shop, "earn"),
            json={"toml": EARN_DRAFT, "reason": "double the rate"},
            headers=admin,
        )
        records = await tail.collect(
            lambda r: r.key == shop.encode() and b'"version":2,' in r.value, count=1
        )
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 2
    event = events_of(records)[0]
    assert event["type"] == "programme.published"
    assert event["data"]["toml"] == EARN_DRAFT
    assert event["data"]["version"] == 2
    assert event["data"]["published_by"] == admin["X-API-Key"][:12]
    listed = await shops.api.get(VERSIONS.format(shop, "earn"), headers=admin)
    assert [(v["version"], v["reason"]) for v in listed.json()] == [
        (1, "template vn-fashion"),
        (2, "double the rate"),
    ]
    one = await shops.api.get(VERSIONS.format(shop, "earn") + "/2", headers=admin)
    assert one.json()["toml"] == EARN_DRAFT


async def test_a_document_that_is_not_valid_is_refused_naming_the_setting(
    shops: ShopsService,
) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    bad = EARN_DRAFT.replace("per_amount = 5000", "per_amount = -1")
    for path in ("/validate", "/versions"):
        response = await shops.api.post(
            f"/v1/shops/{shop}/programmes/earn{path}", json={"toml": bad}, headers=shops.platform
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["location"] == "earn.currencies.VND.per_amount"
    tiers = await shops.api.post(
        f"/v1/shops/{shop}/programmes/tiers/validate",
        json={"toml": 'basis = "moon"'},
        headers=shops.platform,
    )
    assert tiers.status_code == 422
    assert "tiers.basis" in [e["location"] for e in tiers.json()["errors"]]
    messages = await shops.api.post(
        f"/v1/shops/{shop}/programmes/messages/validate",
        json={"toml": 'sender_name = "A"\nsender_address = "not an address"'},
        headers=shops.platform,
    )
    assert "messages.sender_address" in [e["location"] for e in messages.json()["errors"]]
    listed = await shops.api.get(VERSIONS.format(shop, "earn"), headers=shops.platform)
    assert [v["version"] for v in listed.json()] == [1]  # nothing saved


async def test_a_valid_draft_is_accepted_without_being_saved(shops: ShopsService) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    response = await shops.api.post(
        f"/v1/shops/{shop}/programmes/earn/validate",
        json={"toml": EARN_DRAFT},
        headers=shops.platform,
    )
    assert response.json() == {"valid": True}
    listed = await shops.api.get(VERSIONS.format(shop, "earn"), headers=shops.platform)
    assert len(listed.json()) == 1


@pytest.mark.parametrize("before_lead", [timedelta(hours=1), timedelta(seconds=-29)])
async def test_a_version_may_not_start_before_the_lead(
    shops: ShopsService, before_lead: timedelta
) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    now = shops.runtime.clock.now()
    too_early = now - before_lead
    future = now + timedelta(days=3)
    refused = await shops.api.post(
        VERSIONS.format(shop, "earn"),
        json={"toml": EARN_DRAFT, "effective_from": too_early.isoformat()},
        headers=shops.platform,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["location"] == "effective_from"
    default = await shops.api.post(
        VERSIONS.format(shop, "earn"), json={"toml": EARN_DRAFT}, headers=shops.platform
    )
    starts = datetime.fromisoformat(default.json()["effective_from"])
    assert starts - now >= timedelta(seconds=30)
    later = await shops.api.post(
        VERSIONS.format(shop, "earn"),
        json={"toml": EARN_DRAFT, "effective_from": future.isoformat()},
        headers=shops.platform,
    )
    assert later.status_code == 201
    assert later.json()["effective_from"].startswith(future.isoformat()[:19])


async def test_a_version_may_not_start_before_the_version_it_follows(
    shops: ShopsService,
) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    now = shops.runtime.clock.now()
    later = await shops.api.post(
        VERSIONS.format(shop, "earn"),
        json={"toml": EARN_DRAFT, "effective_from": (now + timedelta(days=3)).isoformat()},
        headers=shops.platform,
    )
    sooner = await shops.api.post(
        VERSIONS.format(shop, "earn"),
        json={"toml": EARN_DRAFT, "effective_from": (now + timedelta(days=1)).isoformat()},
        headers=shops.platform,
    )

    assert later.status_code == 201
    assert sooner.status_code == 422
    assert sooner.json()["errors"][0]["location"] == "effective_from"
    assert "version 2" in sooner.json()["errors"][0]["message"]
    listed = await shops.api.get(VERSIONS.format(shop, "earn"), headers=shops.platform)
    assert [v["version"] for v in listed.json()] == [1, 2]


async def test_a_rollback_publishes_the_old_document_as_a_new_version(
    shops: ShopsService,
) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    first = (
        await shops.api.get(VERSIONS.format(shop, "earn") + "/1", headers=shops.platform)
    ).json()
    await shops.api.post(
        VERSIONS.format(shop, "earn"), json={"toml": EARN_DRAFT}, headers=shops.platform
    )
    back = await shops.api.post(
        f"/v1/shops/{shop}/programmes/earn/rollback", json={"version": 1}, headers=shops.platform
    )
    assert back.status_code == 201, back.text
    assert back.json()["version"] == 3
    assert back.json()["toml"] == first["toml"]
    assert back.json()["reason"] == "rollback to version 1"
    missing = await shops.api.post(
        f"/v1/shops/{shop}/programmes/earn/rollback", json={"version": 9}, headers=shops.platform
    )
    assert missing.status_code == 404
    control = await shops.api.post(
        f"/v1/shops/{shop}/programmes/earn/rollback",
        json={"version": 1, "reason": "a\u0000b"},
        headers=shops.platform,
    )
    assert control.status_code == 422


async def test_a_preview_tells_what_an_order_would_earn_under_a_draft(
    shops: ShopsService,
) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    order: dict[str, Any] = {
        "currency": "VND",
        "lines": [
            {"sku": "ao", "category": "bo-suu-tap-moi", "quantity": 1, "unit_price": "500000"},
            {"sku": "quan", "category": "quan", "quantity": 2, "unit_price": "250000"},
        ],
        "shipping": "30000",
    }
    body = {"toml": EARN_DRAFT, "order": order, "paid_at": "2026-03-02T10:00:00+07:00"}
    preview = f"/v1/shops/{shop}/programmes/earn/preview"
    answer = await shops.api.post(
        preview, json={**body, "multiplier": "1.5"}, headers=shops.platform
    )
    assert answer.status_code == 200, answer.text
    # Shipping earns nothing; 500,000 x 3 + 500,000 = 2,000,000 weighted; 1 point per 5,000
    # = 400 points; a tier's x1.5 = 600.
    assert answer.json()["base_amount"] == "1000000"
    assert answer.json()["base_points"] == 400
    assert answer.json()["tier_points"] == 600
    assert answer.json()["points"] == 600
    dollars = await shops.api.post(
        preview, json={**body, "order": {**order, "currency": "USD"}}, headers=shops.platform
    )
    assert dollars.json()["earns"] is False
    fraction = await shops.api.post(
        preview,
        json={**body, "order": {**order, "shipping": "0.5"}},
        headers=shops.platform,
    )
    assert fraction.status_code == 422
    assert fraction.json()["errors"][0]["location"] == "body.order.shipping"
    listed = await shops.api.get(VERSIONS.format(shop, "earn"), headers=shops.platform)
    assert len(listed.json()) == 1  # a preview saves nothing


async def test_every_change_is_audited_with_who_and_what(shops: ShopsService) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    admin_key = await shops.new_key(shop, ["admin"])
    await shops.api.post(
        VERSIONS.format(shop, "earn"), json={"toml": EARN_DRAFT}, headers=shops.as_key(admin_key)
    )
    trail = await shops.api.get(f"/v1/shops/{shop}/audit", headers=shops.as_key(admin_key))
    entries = trail.json()
    assert entries[0]["action"] == "programme.published"
    assert entries[0]["actor"] == admin_key[:12]
    assert entries[0]["detail"]["version"] == 2
    assert set(entries[0]["detail"]["changed"]) >= {"currencies", "products", "actions"}
    actions = [e["action"] for e in entries]
    assert actions.count("programme.published") == 4
    assert "shop.created" in actions and "api_key.created" in actions
    assert entries[-1]["actor"] == shops.platform_key[:12]  # the shop was created by it


async def test_a_platform_key_acting_for_someone_is_audited_as_such_and_a_shop_key_is_not(
    shops: ShopsService,
) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    admin_key = await shops.new_key(shop, ["admin"])
    on_behalf = {"X-On-Behalf-Of": "console:u_abc123"}
    by_platform = await shops.api.post(
        VERSIONS.format(shop, "earn"),
        json={"toml": EARN_DRAFT, "reason": "by the console"},
        headers={**shops.platform, **on_behalf},
    )
    by_admin = await shops.api.post(
        f"/v1/shops/{shop}/programmes/earn/rollback",
        json={"version": 1},
        headers={**shops.as_key(admin_key), **on_behalf},
    )
    malformed = await shops.api.post(
        f"/v1/shops/{shop}/programmes/earn/rollback",
        json={"version": 2},
        headers={**shops.platform, "X-On-Behalf-Of": "console:u 1; drop"},
    )
    assert by_platform.status_code == 201, by_platform.text
    assert by_platform.json()["published_by"] == f"{shops.platform_key[:12]} for console:u_abc123"
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["published_by"] == admin_key[:12]
    assert malformed.json()["published_by"] == shops.platform_key[:12]
    trail = await shops.api.get(f"/v1/shops/{shop}/audit", headers=shops.platform)
    actors = [e["actor"] for e in trail.json() if e["action"] == "programme.published"]
    assert actors[:3] == [
        shops.platform_key[:12],
        admin_key[:12],
        f"{shops.platform_key[:12]} for console:u_abc123",
    ]


async def test_the_database_refuses_to_change_a_published_version(shops: ShopsService) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    for statement in (
        "UPDATE shops.programme_versions SET toml = 'x = 1' WHERE shop_id = $1",
        "DELETE FROM shops.programme_versions WHERE shop_id = $1",
    ):
        with pytest.raises(asyncpg.RaiseError, match="immutable"):
            await shops.pool.execute(statement, shop)
    listed = await shops.api.get(VERSIONS.format(shop, "earn"), headers=shops.platform)
    assert len(listed.json()) == 1

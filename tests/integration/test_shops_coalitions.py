"""Coalitions in the shops service against real PostgreSQL and Kafka: a coalition made from a
template, shops created in it or joining and leaving it as versioned memberships (lead, order,
kinds, currencies, platform keys only), the audit trail, and shop.coalition_changed on
loyalty.shops ahead of the shop's programmes; the same from the command line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from infrastructure import Endpoints
from shops_support import ShopsService, shops_service
from support import TopicTail, loyalty_command, unique

from shared.events.fields import EVENT_TIME_START


@pytest.fixture(scope="module")
async def shops(infrastructure: Endpoints) -> AsyncIterator[ShopsService]:
    async with shops_service(infrastructure) as service:
        yield service


async def new_coalition(shops: ShopsService, template: str = "vn-fashion") -> str:
    coalition = unique("c")
    made = await shops.api.post(
        "/v1/coalitions",
        json={"coalition_id": coalition, "template": template},
        headers=shops.platform,
    )
    assert made.status_code == 201, made.text
    assert made.json()["kind"] == "coalition"
    return coalition


async def set_coalition(
    shops: ShopsService, shop: str, body: dict[str, Any], key: str | None = None
) -> Any:
    headers = shops.platform if key is None else shops.as_key(key)
    return await shops.api.put(f"/v1/shops/{shop}/coalition", json=body, headers=headers)


def problem_at(response: Any) -> list[str]:
    return [e["location"] for e in response.json().get("errors", [])]


async def test_a_shop_created_in_a_coalition_is_announced_a_member_before_its_programmes(
    shops: ShopsService, infrastructure: Endpoints
) -> None:
    coalition = await new_coalition(shops)
    shop = unique("a")
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.shops") as tail:
        made = await shops.api.post(
            "/v1/shops",
            json={"shop_id": shop, "template": "vn-fashion", "coalition_id": coalition},
            headers=shops.platform,
        )
        records = await tail.collect(lambda r: r.key == shop.encode(), count=5)
    assert made.status_code == 201, made.text
    assert (made.json()["kind"], made.json()["coalition_id"]) == ("shop", coalition)
    events = [json.loads(r.value) for r in records]
    assert [e["type"] for e in events] == [
        "shop.created",
        "shop.coalition_changed",
        *["programme.published"] * 3,
    ]
    changed = events[1]["data"]
    assert (changed["version"], changed["coalition_id"]) == (1, coalition)
    assert datetime.fromisoformat(changed["effective_from"]) == EVENT_TIME_START
    assert "kind" not in events[0]["data"]  # a shop's shop.created is what it always was

    found = await shops.api.get(f"/v1/coalitions/{coalition}", headers=shops.platform)
    assert [m["shop_id"] for m in found.json()["members"]] == [shop]


async def test_a_shop_joins_and_leaves_as_versions_after_the_lead_with_an_audit_row(
    shops: ShopsService, infrastructure: Endpoints
) -> None:
    coalition, shop = await new_coalition(shops), unique("n")
    await shops.new_shop(shop)
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.shops") as tail:
        joined = await set_coalition(shops, shop, {"coalition_id": coalition, "reason": "deal"})
        records = await tail.collect(
            lambda r: r.key == shop.encode() and b'"shop.coalition_changed"' in r.value, count=1
        )
    assert joined.status_code == 200, joined.text
    version = joined.json()
    announced = json.loads(records[0].value)
    assert announced["type"] == "shop.coalition_changed"
    assert announced["data"]["coalition_id"] == coalition
    published_at = datetime.fromisoformat(version["published_at"])
    assert datetime.fromisoformat(version["effective_from"]) - published_at == timedelta(seconds=30)

    starts = datetime.fromisoformat(version["effective_from"]) + timedelta(days=1)
    left = await set_coalition(
        shops, shop, {"coalition_id": None, "effective_from": starts.isoformat()}
    )
    assert left.status_code == 200, left.text
    listed = await shops.api.get(f"/v1/shops/{shop}/coalition/versions", headers=shops.platform)
    assert [(v["version"], v["coalition_id"]) for v in listed.json()] == [
        (1, coalition),
        (2, None),
    ]
    shown = await shops.api.get(f"/v1/shops/{shop}", headers=shops.platform)
    assert shown.json()["coalition_id"] is None
    audit = await shops.api.get(f"/v1/shops/{shop}/audit", headers=shops.platform)
    actions = [(e["action"], e["detail"].get("coalition_id")) for e in audit.json()[:2]]
    assert actions == [("coalition.left", coalition), ("coalition.joined", coalition)]


async def test_a_membership_that_breaks_a_rule_is_refused_naming_the_field(
    shops: ShopsService,
) -> None:
    coalition, other, shop, dollars = (
        await new_coalition(shops),
        await new_coalition(shops),
        unique("n"),
        unique("us"),
    )
    await shops.new_shop(shop)
    await shops.new_shop(dollars, "us-shop")
    now = datetime.now(UTC)  # the service's clock is the test's

    cases: list[tuple[str, dict[str, Any], str]] = [
        (shop, {"coalition_id": dollars}, "coalition_id"),  # a shop, not a coalition
        (coalition, {"coalition_id": other}, "shop_id"),  # a coalition joins none
        (shop, {"coalition_id": None}, "coalition_id"),  # nothing changes
        (dollars, {"coalition_id": coalition}, "coalition_id"),  # no USD rate in the coalition
        (shop, {"coalition_id": coalition, "effective_from": now.isoformat()}, "effective_from"),
    ]
    for target, body, field in cases:
        refused = await set_coalition(shops, target, body)
        assert refused.status_code == 422, (target, body, refused.text)
        assert problem_at(refused) == [field], (target, body)

    later = await set_coalition(
        shops, shop, {"coalition_id": coalition, "effective_from": "2199-01-01T00:00:00Z"}
    )
    assert later.status_code == 200
    earlier = await set_coalition(shops, shop, {"coalition_id": None})
    assert (earlier.status_code, problem_at(earlier)) == (422, ["effective_from"])


async def test_only_a_platform_key_changes_memberships_and_a_coalition_key_sees_its_own(
    shops: ShopsService,
) -> None:
    coalition, shop = await new_coalition(shops), unique("a")
    await shops.new_shop(shop)
    admin = await shops.new_key(shop, ["admin"])
    own = await shops.new_key(coalition, ["admin"])

    refused = await set_coalition(shops, shop, {"coalition_id": coalition}, key=admin)
    assert refused.status_code == 403
    made = await shops.api.post(
        "/v1/coalitions",
        json={"coalition_id": unique("c"), "template": "vn-fashion"},
        headers=shops.as_key(own),
    )
    assert made.status_code == 403
    assert (await set_coalition(shops, shop, {"coalition_id": coalition})).status_code == 200

    as_member = await shops.api.get(f"/v1/coalitions/{coalition}", headers=shops.as_key(admin))
    assert as_member.status_code == 404
    as_own = await shops.api.get(f"/v1/coalitions/{coalition}", headers=shops.as_key(own))
    assert [m["shop_id"] for m in as_own.json()["members"]] == [shop]
    listed = await shops.api.get("/v1/coalitions", headers=shops.as_key(own))
    assert [c["shop_id"] for c in listed.json()] == [coalition]
    assert (await shops.api.get("/v1/coalitions", headers=shops.as_key(admin))).json() == []
    members_keys = await shops.api.get(f"/v1/shops/{shop}/keys", headers=shops.as_key(own))
    assert members_keys.status_code == 404  # a coalition's key reaches no member's shop


def test_the_commands_create_a_coalition_and_move_a_shop_in_and_out(
    infrastructure: Endpoints,
) -> None:
    env = {"LOYALTY_DATABASE_URL": infrastructure.database_url}
    coalition, shop, member = unique("c"), unique("n"), unique("a")

    def run(*args: str) -> str:
        done = loyalty_command(*args, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert (
        json.loads(run("coalitions", "create", coalition, "--template", "vn-fashion"))["kind"]
        == "coalition"
    )
    run("shops", "create", member, "--template", "vn-fashion", "--coalition", coalition)
    run("shops", "create", shop, "--template", "vn-fashion")
    said = run("coalitions", "join", shop, coalition, "--reason", "deal")
    assert f"shop {shop} joins {coalition}" in said
    members = json.loads(run("coalitions", "members", coalition))
    assert sorted(m["shop_id"] for m in members) == sorted([member, shop])
    assert coalition in {c["shop_id"] for c in json.loads(run("coalitions", "list"))}
    run("coalitions", "leave", shop, "--effective-from", "2199-01-01T00:00:00Z")
    versions = run("coalitions", "versions", shop).splitlines()
    assert [line.split("\t")[2] for line in versions] == [coalition, "-"]

    refused = loyalty_command("coalitions", "join", member, unique("nowhere"), env=env)
    assert refused.returncode == 2
    assert "coalition_id:" in refused.stderr

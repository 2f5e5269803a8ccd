"""API keys of the shops service: made, listed (prefix only), rotated and revoked over HTTP
and from the CLI; a shop's admin key never reaches another shop, a platform key reaches all."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from infrastructure import Endpoints
from shops_support import ShopsService, shops_service
from support import TopicTail, loyalty_command, unique

TEMPLATES = Path(__file__).parents[2] / "services" / "shops" / "templates"


@pytest.fixture(scope="module")
async def shops(infrastructure: Endpoints) -> AsyncIterator[ShopsService]:
    async with shops_service(infrastructure) as service:
        yield service


async def test_keys_are_made_listed_by_prefix_rotated_and_revoked(
    shops: ShopsService, infrastructure: Endpoints
) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    admin = shops.as_key(await shops.new_key(shop, ["admin"]))
    made = await shops.api.post(f"/v1/shops/{shop}/keys", json={"scopes": ["read"]}, headers=admin)
    assert made.status_code == 201, made.text
    secret, key_id = made.json()["secret"], made.json()["key_id"]
    assert secret.startswith("lk_") and made.json()["prefix"] == secret[:12]
    listed = (await shops.api.get(f"/v1/shops/{shop}/keys", headers=admin)).json()
    assert [k["prefix"] for k in listed][-1] == secret[:12]
    assert not any("secret" in k or "key_sha256" in k for k in listed)
    assert secret not in json.dumps(listed)

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.shops") as tail:
        rotated = await shops.api.post(f"/v1/shops/{shop}/keys/{key_id}/rotate", headers=admin)
        records = await tail.collect(lambda r: _rotation(r.value, key_id), count=2)
    assert rotated.status_code == 201
    assert rotated.json()["scopes"] == ["read"] and rotated.json()["secret"] != secret
    types = [json.loads(r.value)["type"] for r in records]
    assert types == ["api_key.revoked", "api_key.created"]
    keys = {
        k["key_id"]: k
        for k in (await shops.api.get(f"/v1/shops/{shop}/keys", headers=admin)).json()
    }
    assert keys[key_id]["revoked_at"] is not None
    assert keys[rotated.json()["key_id"]]["revoked_at"] is None
    again = await shops.api.post(f"/v1/shops/{shop}/keys/{key_id}/rotate", headers=admin)
    assert again.status_code == 409


def _rotation(value: bytes, key_id: str) -> bool:
    """The revocation of the key, or the creation of another read key (its replacement)."""
    if b'"api_key.revoked"' in value:
        return key_id.encode() in value
    return b'"api_key.created"' in value and b'["read"]' in value and key_id.encode() not in value


async def test_a_revoked_admin_key_opens_nothing(shops: ShopsService) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    admin_key = await shops.new_key(shop, ["admin"])
    listed = (await shops.api.get(f"/v1/shops/{shop}/keys", headers=shops.platform)).json()
    key_id = next(k["key_id"] for k in listed if k["prefix"] == admin_key[:12])
    before = await shops.api.get(f"/v1/shops/{shop}", headers=shops.as_key(admin_key))
    assert before.status_code == 200
    revoked = await shops.api.delete(f"/v1/shops/{shop}/keys/{key_id}", headers=shops.platform)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    after = await shops.api.get(f"/v1/shops/{shop}", headers=shops.as_key(admin_key))
    assert after.status_code == 401


async def test_an_admin_key_reaches_its_own_shop_only_and_a_platform_key_every_shop(
    shops: ShopsService,
) -> None:
    shop_a, shop_b = unique("a"), unique("b")
    await shops.new_shop(shop_a)
    await shops.new_shop(shop_b, "us-shop")
    admin_a = shops.as_key(await shops.new_key(shop_a, ["admin"]))
    paths = [
        "/v1/shops/{}",
        "/v1/shops/{}/audit",
        "/v1/shops/{}/keys",
        "/v1/shops/{}/programmes/earn/versions",
        "/v1/shops/{}/programmes/earn/versions/1",
    ]
    for path in paths:
        own = await shops.api.get(path.format(shop_a), headers=admin_a)
        other = await shops.api.get(path.format(shop_b), headers=admin_a)
        platform = await shops.api.get(path.format(shop_b), headers=shops.platform)
        assert (own.status_code, other.status_code, platform.status_code) == (200, 404, 200), path
    publish = await shops.api.post(
        f"/v1/shops/{shop_b}/programmes/tiers/rollback", json={"version": 1}, headers=admin_a
    )
    make_key = await shops.api.post(
        f"/v1/shops/{shop_b}/keys", json={"scopes": ["admin"]}, headers=admin_a
    )
    assert (publish.status_code, make_key.status_code) == (404, 404)
    mine = (await shops.api.get("/v1/shops", headers=admin_a)).json()
    assert [s["shop_id"] for s in mine] == [shop_a]
    everyone = (await shops.api.get("/v1/shops", headers=shops.platform)).json()
    assert {shop_a, shop_b} <= {s["shop_id"] for s in everyone}
    create = await shops.api.post(
        "/v1/shops", json={"shop_id": unique("c"), "template": "us-shop"}, headers=admin_a
    )
    assert create.status_code == 403


async def test_keys_without_admin_scope_or_without_a_key_are_refused(
    shops: ShopsService,
) -> None:
    shop = unique("shop")
    await shops.new_shop(shop)
    reader = shops.as_key(await shops.new_key(shop, ["read", "redeem"]))
    assert (await shops.api.get(f"/v1/shops/{shop}", headers=reader)).status_code == 403
    assert (await shops.api.get(f"/v1/shops/{shop}")).status_code == 401
    unknown = shops.as_key("lk_" + "x" * 43)
    assert (await shops.api.get(f"/v1/shops/{shop}", headers=unknown)).status_code == 401


def test_the_cli_makes_a_platform_key_a_shop_and_a_version(
    infrastructure: Endpoints,
) -> None:
    env = {
        "LOYALTY_DATABASE_URL": infrastructure.database_url,
        "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap,
        "LOYALTY_LOG_LEVEL": "warning",
    }
    key = loyalty_command("keys", "create", "--platform", env=env)
    assert key.returncode == 0, key.stderr
    assert json.loads(key.stdout.split("\nthe secret")[0])["scopes"] == ["platform"]
    shop = unique("cli")
    made = loyalty_command("shops", "create", shop, "--template", "us-shop", env=env)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["currency"] == "USD"
    back = loyalty_command("programmes", "rollback", shop, "earn", "1", env=env)
    assert back.returncode == 0 and "version 2" in back.stdout
    second = loyalty_command("programmes", "show", shop, "earn", "2", env=env)
    assert second.stdout.strip() == (TEMPLATES / "us-shop" / "earn.toml").read_text().strip()
    trail = loyalty_command("shops", "audit", "--shop", shop, "--limit", "1", env=env)
    (latest,) = json.loads(trail.stdout)
    assert (latest["action"], latest["detail"]["rolled_back_to"]) == ("programme.published", 1)
    assert latest["actor"].startswith("cli:")
    missing = loyalty_command("programmes", "versions", unique("none"), "earn", env=env)
    assert missing.returncode == 1 and "no shop" in missing.stderr

"""Another service's view of the shops (shared.shop_directory): programme versions,
memberships and keys announced on loyalty.shops reach its tables and the memory of every
replica; the caller of a route is resolved from X-API-Key in memory, scoped to the key's shop,
with the holder of that shop's accounts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import Depends, FastAPI
from infrastructure import Endpoints
from pydantic import SecretStr
from shops_support import ShopsService, shops_service
from support import eventually, own_groups, running, unique

from services.shops.adapters.announcements import announce
from shared.callers import CallerAccount, CallerShop, require_own_account, require_scope
from shared.events.fields import EVENT_TIME_START
from shared.events.shops import ShopCoalitionChanged
from shared.kafka_connection import KafkaConnection
from shared.problems import install_problem_handlers
from shared.runtime import Runtime, ServiceDefinition, build_app
from shared.settings import CommonSettings
from shared.shop_directory import ShopDirectory
from shared.topics import TOPIC_CONFIGS, _settled_topic_configs, ensure_topics

Seen = list[tuple[str, int, datetime, str]]


def probe_api(directory: ShopDirectory) -> FastAPI:
    """A small service API whose routes take the caller's shop, as the services' will."""
    api = FastAPI()
    api.state.shop_directory = directory
    install_problem_handlers(api, invalid_field="the request breaks a rule")

    @api.get("/whose")
    async def whose(shop: CallerShop) -> dict[str, str]:
        return {"shop": shop}

    @api.post("/redeem", dependencies=[Depends(require_scope("redeem"))])
    async def redeem(shop: CallerShop) -> dict[str, str]:
        return {"shop": shop}

    @api.get("/account")
    async def account(account: CallerAccount) -> dict[str, str]:
        return {"shop": account.shop_id, "holder": account.holder_id}

    @api.post("/adjust", dependencies=[Depends(require_own_account)])
    async def adjust(account: CallerAccount) -> dict[str, str]:
        return {"holder": account.holder_id}

    return api


@pytest.fixture(scope="module")
async def shops(infrastructure: Endpoints) -> AsyncIterator[ShopsService]:
    async with shops_service(infrastructure) as service:
        yield service


@pytest.fixture
async def probe(
    infrastructure: Endpoints, tmp_path: Path, shops: ShopsService
) -> AsyncIterator[tuple[Runtime, ShopDirectory, httpx.AsyncClient, Seen]]:
    """A service of the test's own schema that keeps a directory, and what its earn callback saw."""
    schema = unique("probe").replace("-", "_")
    directory = ShopDirectory(schema)
    seen: Seen = []
    directory.on_programme("earn", lambda *version: seen.append(version))
    definition = ServiceDefinition(
        name=schema,
        schema=schema,
        migrations=tmp_path,  # the shared tables only
        handlers={"loyalty.shops": directory.record_changes},
        starting=(directory.follow,),
        http_api=lambda _runtime: probe_api(directory),
    )
    settings = CommonSettings(
        consumer_group_prefix=own_groups(),
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(infrastructure.database_url),
        log_format="console",
        batch_timeout_ms=20,
    )
    app, runtime = build_app(definition, settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            running(app, runtime),
            httpx.AsyncClient(transport=transport, base_url="http://probe") as api,
        ):
            await asyncio.wait_for(directory.loaded.wait(), 30)
            yield runtime, directory, api, seen
    finally:
        await shops.pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextlib.asynccontextmanager
async def replica(runtime: Runtime, schema: str) -> AsyncIterator[tuple[ShopDirectory, Seen]]:
    """A second replica's directory: it consumes nothing, and learns through NOTIFY."""
    directory = ShopDirectory(schema)
    seen: Seen = []
    directory.on_programme("earn", lambda *version: seen.append(version))
    task = asyncio.create_task(directory.follow(runtime))
    try:
        await asyncio.wait_for(directory.loaded.wait(), 30)
        yield directory, seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_published_version_reaches_the_tables_and_every_replica(
    shops: ShopsService, probe: tuple[Runtime, ShopDirectory, httpx.AsyncClient, Seen]
) -> None:
    runtime, directory, _api, seen = probe
    shop = unique("shop")
    await shops.new_shop(shop)
    await eventually(lambda: _versions(runtime, shop), lambda n: n == 3)  # earn, tiers, messages
    await eventually(lambda: _of(seen, shop), lambda found: len(found) == 1)
    async with replica(runtime, directory.schema) as (_other, other_seen):
        assert [v[:2] for v in _now(other_seen, shop)] == [(shop, 1)]  # from the table at start
        draft = (
            (
                await shops.api.get(
                    f"/v1/shops/{shop}/programmes/earn/versions/1", headers=shops.platform
                )
            )
            .json()["toml"]
            .replace("per_amount = 10000", "per_amount = 5000")
        )
        published = await shops.api.post(
            f"/v1/shops/{shop}/programmes/earn/versions",
            json={"toml": draft},
            headers=shops.platform,
        )
        assert published.status_code == 201
        for found in (seen, other_seen):
            versions = await eventually(partial(_of, found, shop), lambda v: len(v) == 2)
            assert versions[1][1] == 2 and "per_amount = 5000" in versions[1][3]


async def test_a_key_resolves_to_its_shop_and_revocation_takes_effect(
    shops: ShopsService, probe: tuple[Runtime, ShopDirectory, httpx.AsyncClient, Seen]
) -> None:
    runtime, directory, api, _seen = probe
    shop_a, shop_b = unique("a"), unique("b")
    await shops.new_shop(shop_a)
    await shops.new_shop(shop_b, "us-shop")
    reader = await shops.new_key(shop_a, ["read"])
    platform = await shops.new_key(None, ["platform"])
    await eventually(lambda: _known(directory, reader, platform), lambda known: known)
    stored = await runtime.require_pool().fetchrow(
        f"SELECT * FROM {directory.schema}.shop_keys WHERE prefix = $1", reader[:12]
    )
    assert stored is not None and stored["shop_id"] == shop_a
    assert reader not in str(dict(stored))  # the hash only

    as_reader = {"X-API-Key": reader}
    assert (await api.get("/whose", headers=as_reader)).json() == {"shop": shop_a}
    named_b = await api.get("/whose", headers={**as_reader, "X-Shop-Id": shop_b})
    assert named_b.status_code == 404
    as_platform = {"X-API-Key": platform, "X-Shop-Id": shop_b}
    assert (await api.get("/whose", headers=as_platform)).json() == {"shop": shop_b}
    assert (await api.post("/redeem", headers=as_reader)).status_code == 403
    assert (await api.post("/redeem", headers=as_platform)).status_code == 200
    assert (await api.get("/whose")).status_code == 401

    async with replica(runtime, directory.schema) as (other, _):
        assert other.caller_for(reader) is not None
        keys = (await shops.api.get(f"/v1/shops/{shop_a}/keys", headers=shops.platform)).json()
        key_id = next(k["key_id"] for k in keys if k["prefix"] == reader[:12])
        revoked = await shops.api.delete(
            f"/v1/shops/{shop_a}/keys/{key_id}", headers=shops.platform
        )
        assert revoked.status_code == 200
        for view in (directory, other):
            await eventually(partial(_resolves, view, reader), lambda found: found is None)
    assert (await api.get("/whose", headers=as_reader)).status_code == 401


async def test_a_membership_reaches_the_tables_every_replica_and_the_catch_up(
    shops: ShopsService,
    probe: tuple[Runtime, ShopDirectory, httpx.AsyncClient, Seen],
    infrastructure: Endpoints,
) -> None:
    runtime, directory, api, _seen = probe
    member, coalition = unique("a"), unique("c")
    await shops.new_shop(member)
    key = await shops.new_key(member, ["admin"])
    joined = ShopCoalitionChanged(
        shop_id=member,
        version=1,
        coalition_id=coalition,
        effective_from=EVENT_TIME_START,
        changed_by="tests",
    )
    async with replica(runtime, directory.schema) as (other, _):
        async with shops.pool.acquire() as conn, conn.transaction():
            await announce(
                conn, "shop.coalition_changed", joined, shop_id=member, at=datetime.now(UTC)
            )
        for view in (directory, other):
            await eventually(partial(_holder, view, member), lambda holder: holder == coalition)
    stored = await runtime.require_pool().fetch(
        f"SELECT * FROM {directory.schema}.shop_memberships WHERE shop_id = $1", member
    )
    assert [(r["version"], r["coalition_id"]) for r in stored] == [(1, coalition)]

    as_member = {"X-API-Key": key}
    await eventually(lambda: _status(api, as_member), lambda status: status == 200)
    assert (await api.get("/account", headers=as_member)).json() == {
        "shop": member,
        "holder": coalition,
    }
    refused = await api.post("/adjust", headers=as_member)
    assert (refused.status_code, refused.json()["code"]) == (403, "coalition_account")

    fresh = ShopDirectory(directory.schema)
    await fresh.catch_up(KafkaConnection.from_settings(runtime.settings))
    assert fresh.holders.at(member, datetime.now(UTC)) == coalition


async def _holder(directory: ShopDirectory, shop: str) -> str:
    return directory.holders.at(shop, datetime.now(UTC))


async def _status(api: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await api.get("/account", headers=headers)).status_code


async def _versions(runtime: Runtime, shop: str) -> int:
    schema = runtime.definition.schema
    found = await runtime.require_pool().fetchval(
        f"SELECT count(*) FROM {schema}.shop_programmes WHERE shop_id = $1", shop
    )
    return int(found)


async def _of(seen: Seen, shop: str) -> Seen:
    return [v for v in seen if v[0] == shop]


def _now(seen: Seen, shop: str) -> Seen:
    return [v for v in seen if v[0] == shop]


async def _known(directory: ShopDirectory, *keys: str) -> bool:
    return all(directory.caller_for(k) is not None for k in keys)


async def _resolves(directory: ShopDirectory, key: str) -> Any:
    return directory.caller_for(key)


async def test_the_shops_topic_is_made_to_keep_its_history(
    infrastructure: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A topic of the test's own made as loyalty.shops is: the shared one may exist already.
    name = unique("tests.shops")
    monkeypatch.setitem(TOPIC_CONFIGS, name, TOPIC_CONFIGS["loyalty.shops"])
    await ensure_topics(infrastructure.kafka_bootstrap, [name], partitions=1)
    admin = AIOKafkaAdminClient(bootstrap_servers=infrastructure.kafka_bootstrap)
    await admin.start()
    try:
        configs = await _settled_topic_configs(admin, [name])
        await admin.delete_topics([name])
    finally:
        await admin.close()
    assert configs[name]["retention.ms"] == ("-1", True)

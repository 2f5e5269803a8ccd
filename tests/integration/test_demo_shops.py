"""The demo's shops: made once with the shops use cases, a fresh set of keys at every run."""

from __future__ import annotations

import asyncio
import tomllib
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
from infrastructure import Endpoints

from services.demo_shops import DEMO_SHOPS, DemoKeys, DemoShop, open_shops
from services.shops import handlers
from services.shops.commands import in_shops
from services.shops.handlers import Change
from services.shops.settings import ShopsSettings


def test_a_second_run_keeps_the_shops_and_replaces_its_keys(infrastructure: Endpoints) -> None:
    run = uuid.uuid4().hex[:8]
    # The demo's shops under ids of this test's own, made by an actor of its own.
    shops = [
        DemoShop(s.template, replace(s.sample, shop_id=f"{s.shop_id}-{run}")) for s in DEMO_SHOPS
    ]
    settings = ShopsSettings(
        database_url=infrastructure.database_url,
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
    )
    actor = f"demo-test-{run}"

    def open_once() -> DemoKeys:
        change = Change(actor=actor, now=datetime.now(UTC))
        return asyncio.run(
            in_shops(settings, lambda conn, c: open_shops(conn, c, shops), change, announces=True)
        )

    first, second = open_once(), open_once()

    async def check() -> None:
        conn = await asyncpg.connect(infrastructure.database_url)
        try:
            for shop in shops:
                made = await handlers.find_shop(conn, shop.shop_id)
                assert made.currency == shop.sample.currency
                # The template's programmes, and once only its messages without quiet hours.
                earn = await handlers.list_versions(conn, shop.shop_id, "earn")
                messages = await handlers.list_versions(conn, shop.shop_id, "messages")
                assert [v.version for v in earn] == [1]
                assert [v.version for v in messages] == [1, 2]
                latest = tomllib.loads(messages[-1].toml)
                assert "quiet_hours_start" not in latest
                assert "quiet_hours_end" not in latest
                assert latest["sender_address"] == shop.messages()["sender_address"]
                # Only this run's key opens the shop, with read and redeem.
                old = await handlers.key_of(conn, first.shops[shop.shop_id])
                new = await handlers.key_of(conn, second.shops[shop.shop_id])
                assert old is None
                assert new is not None
                assert (new.shop_id, new.scopes) == (shop.shop_id, ["read", "redeem"])
            # The first run published versions (the second none), in force from its time on.
            assert first.in_force is not None
            starts = [
                (await handlers.list_versions(conn, s.shop_id, "messages"))[-1].effective_from
                for s in shops
            ]
            assert first.in_force == max(starts)
            assert second.in_force is None
            assert await handlers.key_of(conn, first.platform) is None
            platform = await handlers.key_of(conn, second.platform)
            assert platform is not None
            assert (platform.shop_id, platform.scopes) == (None, ["platform"])
        finally:
            await conn.close()

    asyncio.run(check())

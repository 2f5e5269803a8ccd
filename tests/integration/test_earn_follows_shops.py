"""Earn runs the versions the shops service publishes, through the real broker and database:
an order of a version's time earns under it when it comes live, and when earn was down while
the version was published and the order came (a backlog at restart), as a replay would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from diagnosis import started, stopped
from earn_support import earn_settings
from infrastructure import Endpoints
from shops_support import ShopsService, shops_service
from support import database_of_its_own, encoded, eventually, running, unique

from services.earn.bootstrap import bootstrap
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS

US_EARN = Path("services/shops/templates/us-shop/earn.toml").read_text(encoding="utf-8")
LEAD_S = 1.0


def points_per_dollar(points: int) -> str:
    """The us-shop template's earn programme, `points` per dollar instead of 1."""
    changed = US_EARN.replace("points = 1\n", f"points = {points}\n", 1)
    assert changed != US_EARN
    return changed


def paid(shop: str, customer: str, dollars: int) -> CloudEvent[Any]:
    """An order.paid of `shop`, dated now."""
    data = TOPICS["shop.orders"]["order.paid"].model_validate(
        {
            "shop_id": shop,
            "order_id": unique("o"),
            "customer_id": customer,
            "currency": "USD",
            "items": [
                {
                    "sku": "SKU-1",
                    "name": "Tea set",
                    "category": "home",
                    "quantity": 1,
                    "unit_price": str(Decimal(dollars)),
                }
            ],
            "totals": {"total": {"amount": str(Decimal(dollars)), "currency": "USD"}},
        }
    )
    return make_event(
        "order.paid", source="tests/shop", subject=customer, data=data, time=datetime.now(UTC)
    )


@pytest.fixture
async def shops(infrastructure: Endpoints) -> AsyncIterator[ShopsService]:
    async with shops_service(infrastructure, shops_effective_lead_s=LEAD_S) as service:
        yield service


async def publish_version(shops: ShopsService, shop: str, toml: str) -> datetime:
    """A new earn version of `shop`, in force after the lead; waits until it is."""
    answer = await shops.api.post(
        f"/v1/shops/{shop}/programmes/earn/versions", json={"toml": toml}, headers=shops.platform
    )
    assert answer.status_code == 201, answer.text
    starts = datetime.fromisoformat(answer.json()["effective_from"])
    await asyncio.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.05)
    return starts


async def earned(db: asyncpg.Pool, shop: str, customer: str) -> int:
    value = await db.fetchval(
        """SELECT coalesce(sum(points_balance + points_pending), 0) FROM earn.accounts
           WHERE shop_id = $1 AND customer_id = $2""",
        shop,
        customer,
    )
    return int(value)


async def test_a_version_published_live_applies_to_the_orders_of_its_time(
    infrastructure: Endpoints, shops: ShopsService, producer: AIOKafkaProducer
) -> None:
    shop, customer = unique("shop"), unique("c")
    async with database_of_its_own(infrastructure.database_url, "loyalty_follow") as url:
        settings = earn_settings(infrastructure, url)
        app, runtime = bootstrap(settings)
        async with running(app, runtime), asyncpg.create_pool(url, min_size=1, max_size=2) as db:
            await shops.new_shop(shop, "us-shop")
            await publish_version(shops, shop, points_per_dollar(3))
            order = paid(shop, customer, 10)
            await producer.send_and_wait("shop.orders", encoded(order), key=customer.encode())

            points = await eventually(lambda: earned(db, shop, customer), lambda p: p > 0)

    assert points == 30  # version 2's 3 points per dollar, not the template's 1


async def test_a_version_published_while_earn_was_down_applies_to_its_backlog(
    infrastructure: Endpoints, shops: ShopsService, producer: AIOKafkaProducer
) -> None:
    shop, customer = unique("shop"), unique("c")
    async with database_of_its_own(infrastructure.database_url, "loyalty_follow") as url:
        settings = earn_settings(infrastructure, url)
        await shops.new_shop(shop, "us-shop")
        first, runtime = bootstrap(settings)
        async with running(first, runtime), asyncpg.create_pool(url, min_size=1, max_size=2) as db:
            order = paid(shop, customer, 10)
            await producer.send_and_wait("shop.orders", encoded(order), key=customer.encode())
            assert await eventually(lambda: earned(db, shop, customer), lambda p: p > 0) == 10
        # Down: a version is published, and an order of its time waits in the topic.
        await publish_version(shops, shop, points_per_dollar(5))
        later = paid(shop, customer, 10)
        await producer.send_and_wait("shop.orders", encoded(later), key=customer.encode())
        again, runtime = bootstrap(settings)
        await again.start()  # not `running`: its groups resume where the first run stopped
        started(runtime)
        try:
            async with asyncpg.create_pool(url, min_size=1, max_size=2) as db:
                points = await eventually(lambda: earned(db, shop, customer), lambda p: p > 10)
        finally:
            stopped(runtime)
            await again.stop()

    assert points == 10 + 50

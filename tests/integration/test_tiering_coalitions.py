"""Tiering with a coalition made by the shops service: orders at member shops A and B move one
account of the coalition C (one tier, announced with the member shop where it happened), a
shop outside it keeps its own, a member's own rows wait while it is a member, and the manual
tier of the shared account is the coalition's to set."""

from __future__ import annotations

import asyncio
import json
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
from support import TopicTail, eventually, loyalty_command, order_paid, running, unique
from tiering_tools import ADMIN_API_KEY, tiering_settings

from services.shops import coalitions, handlers
from services.tiering.bootstrap import bootstrap
from services.tiering.commands import stored_shops
from services.tiering.handlers import evaluate_due
from services.tiering.programme import EXAMPLE, programme_from_toml
from shared.events import CloudEvent, encode_event
from shared.holders import Holders

COALITION, A, B, N = unique("c"), unique("a"), unique("b"), unique("n")


@dataclass(frozen=True)
class World:
    shops: ShopsService
    api: httpx.AsyncClient
    a_key: str  # read and admin at A
    c_key: str  # read and admin at the coalition


def at_shop(shop_id: str, event: CloudEvent[Any]) -> CloudEvent[Any]:
    return event.model_copy(update={"data": event.data.model_copy(update={"shop_id": shop_id})})


def paid(shop_id: str, customer: str, total: str, **kw: Any) -> CloudEvent[Any]:
    return at_shop(shop_id, order_paid(customer, total=total, currency="VND", **kw))


async def send(producer: AIOKafkaProducer, *events: CloudEvent[Any]) -> None:
    for event in events:
        await producer.send_and_wait("shop.orders", encode_event(event), key=event.subject.encode())


async def tiers_by_shop(db: asyncpg.Pool, customer: str) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT shop_id, tier FROM tiering.customers WHERE customer_id = $1", customer
    )
    return {r["shop_id"]: r["tier"] for r in rows}


async def new_key(shops: ShopsService, shop_id: str) -> str:
    async with shops.pool.acquire() as conn:
        made = await handlers.create_key(
            conn,
            handlers.Change("test", datetime.now(UTC)),
            shop_id=shop_id,
            scopes=["read", "admin"],
        )
    return made.secret


def key(secret: str, shop: str | None = None) -> dict[str, str]:
    return {"X-API-Key": secret} | ({} if shop is None else {"X-Shop-Id": shop})


@pytest.fixture(scope="module")
async def world(infrastructure: Endpoints) -> AsyncIterator[World]:
    """Tiering and the shops service running; C made from vn-fashion with A and B created in
    it, N standing alone; the keys of A and C known to tiering."""
    app, runtime = bootstrap(tiering_settings(infrastructure))
    transport = httpx.ASGITransport(app=app)
    async with (
        # Versions start a second after their publication: a join takes effect soon.
        shops_service(infrastructure, shops_effective_lead_s=1) as shops,
        running(app, runtime),  # its groups begin at the topics' ends: started first
        httpx.AsyncClient(transport=transport, base_url="http://tiering") as api,
    ):
        await shops.new_coalition(COALITION, A, B)
        await shops.new_shop(N, "vn-fashion")
        a_key, c_key = await new_key(shops, A), await new_key(shops, COALITION)
        n_key = await new_key(shops, N)
        # Each shop's changes come in order on its partition: once tiering knows a shop's key,
        # it knows its membership and ladder too.
        probe = f"/v1/customers/{unique('nobody')}/tier"
        for secret in (a_key, c_key, n_key):
            await eventually(partial(api.get, probe, headers=key(secret)), _not_401)
        yield World(shops, api, a_key, c_key)


def _not_401(response: httpx.Response) -> bool:
    return response.status_code != 401


async def test_orders_at_two_members_reach_one_coalition_tier_named_at_the_last_shop(
    world: World, producer: AIOKafkaProducer, db: asyncpg.Pool, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda record: record.key == customer.encode()  # noqa: E731
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.tiers") as tail:
        # silver enters at 5,000,000 VND: neither order reaches it alone.
        await send(
            producer,
            paid(A, customer, "3000000"),
            paid(B, customer, "2500000"),
            paid(N, customer, "3000000"),
        )
        records = await tail.collect(mine, count=1)
        later = await tail.settle(mine, seconds=2)
    changed = json.loads(records[0].value)["data"]
    assert (changed["shop_id"], changed["at_shop"], changed["to_tier"]) == (COALITION, B, "silver")
    assert later == []  # N's 3,000,000 stays below silver, at N
    await eventually(
        lambda: tiers_by_shop(db, customer), lambda t: t == {COALITION: "silver", N: "member"}
    )
    as_a = await world.api.get(f"/v1/customers/{customer}/tier", headers=key(world.a_key))
    assert as_a.json()["tier"] == "silver"


async def test_the_same_order_id_at_two_members_counts_twice(
    producer: AIOKafkaProducer, db: asyncpg.Pool, world: World
) -> None:
    customer, order = unique("c"), unique("o")
    await send(
        producer,
        paid(A, customer, "2600000", order_id=order),
        paid(B, customer, "2600000", order_id=order),
    )
    await eventually(lambda: tiers_by_shop(db, customer), lambda t: t == {COALITION: "silver"})
    keys = await db.fetch(
        "SELECT source_key FROM tiering.contributions WHERE shop_id = $1 AND customer_id = $2",
        COALITION,
        customer,
    )
    assert len({r["source_key"] for r in keys}) == 2


async def test_an_order_naming_the_coalition_as_its_shop_is_dead_lettered(
    producer: AIOKafkaProducer, db: asyncpg.Pool, world: World, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders.dlq") as tail:
        await send(producer, paid(COALITION, customer, "9000000"))
        records = await tail.collect(lambda r: r.key == customer.encode(), count=1)
    headers = dict(records[0].headers)
    assert headers["x-dlq-error-class"] == b"UnknownShop"
    assert await tiers_by_shop(db, customer) == {}


async def test_a_member_shops_own_rows_wait_while_it_is_a_member(
    world: World, producer: AIOKafkaProducer, db: asyncpg.Pool
) -> None:
    customer = unique("c")
    await send(producer, paid(N, customer, "6000000"))
    await eventually(lambda: tiers_by_shop(db, customer), lambda t: t == {N: "silver"})
    async with world.shops.pool.acquire() as conn:
        await coalitions.set_coalition(
            conn,
            handlers.Change("test", datetime.now(UTC), lead=timedelta(seconds=1)),
            shop_id=N,
            coalition_id=COALITION,
        )
    default = programme_from_toml(EXAMPLE.read_text(encoding="utf-8"), source="file")
    later = datetime.now(UTC) + timedelta(days=800)  # past the review of N's silver
    programmes, holders = await eventually(
        partial(stored_shops, db, default), lambda found: found[1].member_now(N, later)
    )
    only = [(N, customer)]

    async def evaluate(holders: Holders) -> tuple[int, int]:
        async with db.acquire() as conn, conn.transaction():
            return await evaluate_due(
                conn,
                programmes=programmes,
                schema="tiering",
                now=later,
                limit=10,
                only=only,
                holders=holders,
            )

    assert await evaluate(holders) == (0, 0)
    assert await tiers_by_shop(db, customer) == {N: "silver"}
    # Alone again (no memberships), the same row is due: the skip is the membership's doing.
    evaluated, _events = await evaluate(Holders())
    assert evaluated == 1


async def test_the_shared_accounts_manual_tier_is_the_coalitions_to_set(world: World) -> None:
    customer = unique("c")
    ends_at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {"tier": "gold", "ends_at": ends_at, "reason": "vip"}
    path = f"/v1/customers/{customer}/manual-tier"

    as_member = await world.api.put(path, json=body, headers=key(world.a_key))
    assert (as_member.status_code, as_member.json()["code"]) == (403, "coalition_account")
    platform_at_member = await world.api.put(path, json=body, headers=key(ADMIN_API_KEY, A))
    assert platform_at_member.status_code == 403
    as_coalition = await world.api.put(path, json=body, headers=key(world.c_key))
    assert as_coalition.status_code == 200, as_coalition.text
    seen_at_a = await world.api.get(f"/v1/customers/{customer}/tier", headers=key(world.a_key))
    assert seen_at_a.json()["tier"] == "gold"


async def test_a_backfill_of_a_coalition_or_a_member_is_refused(
    world: World, infrastructure: Endpoints
) -> None:
    env = {"LOYALTY_DATABASE_URL": infrastructure.database_url}
    for shop in (A, COALITION):
        done = await asyncio.to_thread(
            loyalty_command, "tiering", "backfill", "--shop", shop, "--no-progress", env=env
        )
        assert done.returncode == 1, done.stderr
        assert "coalition" in done.stderr

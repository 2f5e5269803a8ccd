"""Earn with a coalition made by the shops service: member shops A and B share one account per
customer, held by the coalition C under C's programme; a shop outside it keeps its own; spends
at one member take points earned at another; an order paid while a member is taken back from
C's account after the shop has left; and the shared balance is the coalition's to adjust."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from earn_support import earn_settings
from infrastructure import Endpoints
from shops_support import ShopsService, shops_service
from support import (
    TopicTail,
    database_of_its_own,
    encoded,
    eventually,
    order_paid,
    order_refunded,
    running,
    unique,
)

from services.earn.adapters.unit_of_work import transactions
from services.earn.bootstrap import bootstrap
from services.earn.handlers import expire_due
from services.earn.programme import programme_from_text
from services.earn.programme_book import ProgrammeBook
from services.shops import coalitions, handlers
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS

COALITION, A, B, N = unique("c"), unique("a"), unique("b"), unique("n")
VN_EARN = Path("services/shops/templates/vn-fashion/earn.toml").read_text(encoding="utf-8")
# The coalition's own programme: 3 points per 10,000 ₫ (the members' templates give 1), no
# return window, so its points are available at payment, and referrals rewarded.
C_EARN = (
    VN_EARN.replace("points = 1\n", "points = 3\n", 1)
    .replace("return_window_days = 7", "return_window_days = 0", 1)
    .replace("completion_timeout_days = 30", "completion_timeout_days = 0", 1)
) + "\n[actions.referral]\nreferrer_points = 200\nreferred_points = 100\n"
assert C_EARN.count("= 0\n") >= 2


@dataclass(frozen=True)
class World:
    shops: ShopsService
    api: httpx.AsyncClient
    db: asyncpg.Pool
    keys: dict[str, str]  # read, redeem and admin keys of A, B, C and N
    programmes: ProgrammeBook


def at(shop_id: str, event: CloudEvent[Any]) -> CloudEvent[Any]:
    return event.model_copy(update={"data": event.data.model_copy(update={"shop_id": shop_id})})


def signed_up(shop_id: str, customer: str, **more: Any) -> CloudEvent[Any]:
    data = TOPICS["shop.customers"]["customer.signed_up"].model_validate(
        {
            "shop_id": shop_id,
            "customer_id": customer,
            "email": "someone@example.com",
            "name": "Someone",
            "locale": "vi-VN",
            "time_zone": "Asia/Ho_Chi_Minh",
            **more,
        }
    )
    return make_event(
        "customer.signed_up", source="tests/shop", subject=customer, data=data,
        time=datetime.now(UTC),
    )  # fmt: skip


async def send(producer: AIOKafkaProducer, topic: str, *events: CloudEvent[Any]) -> None:
    for event in events:
        await producer.send_and_wait(topic, encoded(event), key=event.subject.encode())


async def balances(db: asyncpg.Pool, customer: str) -> dict[str, tuple[int, int]]:
    """Per holder: (available, pending) points."""
    rows = await db.fetch(
        """SELECT shop_id, points_balance, points_pending FROM earn.accounts
           WHERE customer_id = $1""",
        customer,
    )
    return {r["shop_id"]: (r["points_balance"], r["points_pending"]) for r in rows}


def key(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


def _not_401(response: httpx.Response) -> bool:
    return response.status_code != 401


@pytest.fixture(scope="module")
async def world(infrastructure: Endpoints) -> AsyncIterator[World]:
    """Earn and the shops service running; C with a programme of its own and A and B created
    in it; N standing alone; each one's key known to earn."""
    async with (
        database_of_its_own(infrastructure.database_url, "loyalty_coal") as url,
        shops_service(infrastructure, shops_effective_lead_s=1) as shops,
    ):
        # The book the directory fills with every shop's versions, which the expiry pass reads.
        book = ProgrammeBook.fixed(programme_from_text(VN_EARN, source="vn-fashion"))
        app, runtime = bootstrap(earn_settings(infrastructure, url), programmes=book)
        transport = httpx.ASGITransport(app=app)
        async with (
            running(app, runtime),
            httpx.AsyncClient(transport=transport, base_url="http://earn") as api,
            asyncpg.create_pool(url, min_size=1, max_size=2) as db,
        ):
            await shops.new_coalition(COALITION, A, B)
            await shops.new_shop(N, "vn-fashion")
            version = await shops.api.post(
                f"/v1/shops/{COALITION}/programmes/earn/versions",
                json={"toml": C_EARN},
                headers=shops.platform,
            )
            assert version.status_code == 201, version.text
            starts = datetime.fromisoformat(version.json()["effective_from"])
            keys = {
                shop: await shops.new_key(shop, ["read", "redeem", "admin"])
                for shop in (A, B, COALITION, N)
            }
            probe = f"/v1/customers/{unique('nobody')}/balance"
            for secret in keys.values():
                await eventually(partial(api.get, probe, headers=key(secret)), _not_401)
            await asyncio.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.05)
            yield World(shops, api, db, keys, book)


async def test_members_share_one_balance_under_the_coalitions_programme(
    world: World, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await send(
        producer,
        "shop.orders",
        at(A, order_paid(customer, total="100000")),
        at(B, order_paid(customer, total="200000")),
        at(N, order_paid(customer, total="100000")),
    )

    found = await eventually(lambda: balances(world.db, customer), lambda b: len(b) == 2)

    # C's 3 points per 10,000 ₫, available at once; N's template: 1 per 10,000, pending.
    assert found == {COALITION: (90, 0), N: (0, 10)}
    for shop in (A, B, COALITION):
        seen = await world.api.get(
            f"/v1/customers/{customer}/balance", headers=key(world.keys[shop])
        )
        assert seen.json()["points"]["available"] == 90
    alone = await world.api.get(f"/v1/customers/{customer}/balance", headers=key(world.keys[N]))
    assert alone.json()["points"] == {"available": 0, "pending": 10, "lifetime_earned": 0}


async def test_entries_name_the_member_shop_and_a_member_sees_only_its_own_order_ids(
    world: World, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer, order_a, order_b = unique("c"), unique("o"), unique("o")
    mine = lambda record: record.key == customer.encode()  # noqa: E731
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as tail:
        await send(
            producer,
            "shop.orders",
            at(A, order_paid(customer, total="100000", order_id=order_a)),
            at(B, order_paid(customer, total="100000", order_id=order_b)),
        )
        records = await tail.collect(mine, count=2)
    events = sorted((json.loads(r.value)["data"] for r in records), key=lambda d: d["at_shop"])
    assert [(d["shop_id"], d["at_shop"], d["order_id"]) for d in events] == [
        (COALITION, A, order_a),
        (COALITION, B, order_b),
    ]
    as_a = await world.api.get(f"/v1/customers/{customer}/ledger", headers=key(world.keys[A]))
    as_c = await world.api.get(
        f"/v1/customers/{customer}/ledger", headers=key(world.keys[COALITION])
    )
    seen_by_a = {e["shop"]: e["order_id"] for e in as_a.json()["items"]}
    seen_by_c = {e["shop"]: e["order_id"] for e in as_c.json()["items"]}
    assert seen_by_a == {A: order_a, B: None}
    assert seen_by_c == {A: order_a, B: order_b}


async def test_a_redemption_at_one_member_spends_points_earned_at_another(
    world: World, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await send(producer, "shop.orders", at(A, order_paid(customer, total="2000000")))
    await eventually(lambda: balances(world.db, customer), lambda b: b == {COALITION: (600, 0)})

    redeemed = await world.api.post(
        f"/v1/customers/{customer}/redemptions",
        json={"reward": "voucher-50k"},
        headers=key(world.keys[B]) | {"Idempotency-Key": unique("k")},
    )

    assert redeemed.status_code == 201, redeemed.text
    assert await balances(world.db, customer) == {COALITION: (100, 0)}
    row = await world.db.fetchrow(
        "SELECT shop_id, holder_id FROM earn.redemptions WHERE customer_id = $1", customer
    )
    assert row is not None and (row["shop_id"], row["holder_id"]) == (B, COALITION)


async def test_a_welcome_bonus_is_granted_once_across_the_members(
    world: World, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await send(producer, "shop.customers", signed_up(A, customer), signed_up(B, customer))
    await send(producer, "shop.customers", signed_up(N, customer))

    found = await eventually(lambda: balances(world.db, customer), lambda b: len(b) == 2)

    assert found == {COALITION: (50, 0), N: (50, 0)}


async def test_a_referral_at_one_member_completed_by_an_order_at_another_is_rewarded_once(
    world: World, producer: AIOKafkaProducer
) -> None:
    referrer, referred = unique("c"), unique("c")
    await send(producer, "shop.customers", signed_up(A, referred, referrer_id=referrer))
    await eventually(lambda: balances(world.db, referred), lambda b: b == {COALITION: (50, 0)})
    first = at(B, order_paid(referred, total="100000"))
    await send(producer, "shop.orders", first, at(A, order_paid(referred, total="100000")))

    awards = await eventually(
        lambda: world.db.fetch(
            """SELECT shop_id, customer_id, delta, at_shop, source_event_id FROM earn.ledger
               WHERE reason = 'referral' AND customer_id = ANY($1::text[])
               ORDER BY customer_id = $2 DESC""",
            [referrer, referred],
            referrer,
        ),
        lambda rows: len(rows) == 2,
    )
    assert [tuple(r) for r in awards] == [
        (COALITION, referrer, 200, B, first.id),
        (COALITION, referred, 100, B, first.id),
    ]
    rows = await world.db.fetch(
        "SELECT shop_id, referral_rewarded FROM earn.customers WHERE customer_id = $1", referred
    )
    assert [tuple(r) for r in rows] == [(COALITION, True)]


async def test_the_shared_balance_is_the_coalitions_to_adjust(world: World) -> None:
    customer = unique("c")
    path = f"/v1/admin/customers/{customer}/adjustments"
    body = {"points": 40, "reason": "goodwill"}

    as_member = await world.api.post(
        path, json=body, headers=key(world.keys[A]) | {"Idempotency-Key": unique("k")}
    )
    as_coalition = await world.api.post(
        path, json=body, headers=key(world.keys[COALITION]) | {"Idempotency-Key": unique("k")}
    )
    grants = await world.api.post(
        "/v1/admin/bulk-grants",
        json={
            "batch_id": unique("b"),
            "reason": "r",
            "grants": [{"customer_id": customer, "points": 1}],
        },
        headers=key(world.keys[B]),
    )

    assert (as_member.status_code, as_member.json()["code"]) == (403, "coalition_account")
    assert (grants.status_code, grants.json()["code"]) == (403, "coalition_account")
    assert as_coalition.status_code == 201, as_coalition.text
    assert await balances(world.db, customer) == {COALITION: (40, 0)}


async def test_an_order_naming_the_coalition_as_its_shop_is_dead_lettered(
    world: World, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders.dlq") as tail:
        await send(producer, "shop.orders", at(COALITION, order_paid(customer, total="100000")))
        # Other services sharing the broker may dead-letter it too: earn's is the one here.
        records = await tail.collect(
            lambda r: r.key == customer.encode() and ("x-dlq-service", b"earn") in r.headers,
            count=1,
        )
    assert dict(records[0].headers)["x-dlq-error-class"] == b"UnknownShop"
    assert await balances(world.db, customer) == {}


async def test_points_of_a_coalitions_account_expire_named_at_its_last_member_shop(
    world: World, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await send(
        producer,
        "shop.orders",
        at(B, order_paid(customer, total="100000")),
        at(A, order_paid(customer, total="100000")),
    )
    await eventually(lambda: balances(world.db, customer), lambda b: b == {COALITION: (60, 0)})

    await expire_due(
        transactions(world.db), world.programmes, now=datetime.now(UTC) + timedelta(days=800),
        chunk=1000,
    )  # fmt: skip

    expired = await world.db.fetch(
        """SELECT shop_id, at_shop, delta FROM earn.ledger
           WHERE customer_id = $1 AND kind = 'expired'""",
        customer,
    )
    assert [(r["shop_id"], r["at_shop"], r["delta"]) for r in expired] == [(COALITION, A, -60)]


async def test_a_refund_after_the_shop_left_reverses_from_the_coalition(
    world: World, producer: AIOKafkaProducer
) -> None:
    """Last: A leaves C."""
    customer, order = unique("c"), unique("o")
    await send(producer, "shop.orders", at(A, order_paid(customer, total="100000", order_id=order)))
    await eventually(lambda: balances(world.db, customer), lambda b: b == {COALITION: (30, 0)})
    async with world.shops.pool.acquire() as conn:
        left = await coalitions.set_coalition(
            conn,
            handlers.Change("test", datetime.now(UTC), lead=timedelta(seconds=1)),
            shop_id=A,
            coalition_id=None,
        )
    await asyncio.sleep(max(0.0, (left.effective_from - datetime.now(UTC)).total_seconds()) + 0.2)

    await send(
        producer,
        "shop.orders",
        at(A, order_refunded(customer, order)),
        at(A, order_paid(customer, total="100000")),
    )

    found = await eventually(lambda: balances(world.db, customer), lambda b: len(b) == 2)
    assert found == {COALITION: (0, 0), A: (0, 10)}  # A's own account, under its own programme

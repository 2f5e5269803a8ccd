"""Two shops with different programmes in one earn, through the real broker and database: the
same customer ids, the same order ids and the same Kafka keys at both, and nothing of one shop
ever changes the other's balances, ledger, tiers or answers. A replay after a programme change
gives the points the first run gave."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from earn_support import caught_up_directory, earn_of_its_own
from infrastructure import Endpoints
from pydantic import SecretStr
from support import TopicTail, consumer_record, database_of_its_own, encoded, eventually, unique

from services.earn.adapters.unit_of_work import PostgresUnitOfWork, transactions
from services.earn.bootstrap import definition
from services.earn.handlers import expire_due, release_due
from services.earn.programme import Programme, parse_programme
from services.earn.programme_book import ProgrammeBook
from services.earn.settings import EarnSettings
from shared.clock import FixedClock
from shared.consumer import BatchConsumer
from shared.db import apply_migrations
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS
from shared.runtime import MESSAGING_MIGRATIONS

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
VN, US = "vn-fashion", "us-store"
ADMIN_KEY = "earn-admin-key-for-shop-tests"

VN_PROGRAMME = parse_programme(
    {
        "time_zone": "Asia/Ho_Chi_Minh",
        "currencies": {"VND": {"per_amount": Decimal(10_000)}},
        "cashback": {"percent": {"VND": Decimal(2)}},
        "actions": {"signup": {"points": 50}},
        "rewards": [
            {
                "code": "vn-voucher",
                "name": "50,000 VND voucher",
                "kind": "voucher",
                "cost_points": 10,
                "value": {"VND": "50000"},
            }
        ],
    }
)
US_PROGRAMME = parse_programme(
    {
        "time_zone": "America/New_York",
        "currencies": {"USD": {"per_amount": Decimal(1)}},
        "products": [{"categories": ["apparel"], "multiplier": Decimal(2)}],
        "actions": {"signup": {"points": 5}},
        "rewards": [
            {
                "code": "us-voucher",
                "name": "5 USD voucher",
                "kind": "voucher",
                "cost_points": 20,
                "value": {"USD": "5.00"},
            }
        ],
    }
)


def book() -> ProgrammeBook:
    programmes = ProgrammeBook.fixed(parse_programme({"currencies": {"EUR": {"per_amount": 1}}}))
    programmes.add_version(VN, T0 - timedelta(days=365), VN_PROGRAMME)
    programmes.add_version(US, T0 - timedelta(days=365), US_PROGRAMME)
    return programmes


def event(topic: str, type_: str, data: dict[str, Any], at: datetime = T0) -> CloudEvent[Any]:
    model = TOPICS[topic][type_]
    subject = data["customer_id"]
    return make_event(
        type_, source="tests/shop", subject=subject, data=model.model_validate(data), time=at
    )


def paid(
    shop: str, customer: str, order_id: str, currency: str, total: str, at: datetime = T0
) -> CloudEvent[Any]:
    line = {"sku": "tee", "name": "Tee", "category": "apparel", "quantity": 1}
    return event(
        "shop.orders",
        "order.paid",
        {
            "shop_id": shop,
            "order_id": order_id,
            "customer_id": customer,
            "currency": currency,
            "items": [line | {"unit_price": total}],
            "totals": {"total": {"amount": total, "currency": currency}},
        },
        at,
    )


def refunded(shop: str, customer: str, order_id: str, currency: str) -> CloudEvent[Any]:
    data = {
        "shop_id": shop,
        "order_id": order_id,
        "customer_id": customer,
        "refund": {"amount": "0", "currency": currency},
        "full": True,
    }
    return event("shop.orders", "order.refunded", data, T0 + timedelta(hours=1))


def signed_up(shop: str, customer: str) -> CloudEvent[Any]:
    profile = {"email": "an@example.com", "name": "An", "locale": "vi-VN", "time_zone": "UTC"}
    data = {"shop_id": shop, "customer_id": customer, **profile}
    return event("shop.customers", "customer.signed_up", data)


def tier_changed(shop: str, customer: str, multiplier: str) -> CloudEvent[Any]:
    at = T0 - timedelta(days=1)
    data = {
        "customer_id": customer,
        "shop_id": shop,
        "from_tier": None,
        "to_tier": "gold",
        "direction": "up",
        "reason": "qualified",
        "qualifying_amount": "0",
        "basis": "points",
        "effective_at": at.isoformat(),
        "multiplier": multiplier,
    }
    return event("loyalty.tiers", "tier.changed", data, at)


@dataclass
class Shops:
    db: asyncpg.Pool
    client: httpx.AsyncClient
    producer: AIOKafkaProducer
    kafka: str

    async def publish(self, topic: str, *events: CloudEvent[Any]) -> None:
        for e in events:
            await self.producer.send_and_wait(topic, encoded(e), key=e.subject.encode())

    async def accounts(self, customer: str) -> dict[str, tuple[int, int, int]]:
        """Per shop: (points, pending points, store credit in minor units)."""
        rows = await self.db.fetch(
            """SELECT a.shop_id, a.points_balance, a.points_pending,
                      coalesce(sum(c.balance_minor), 0) AS credit
               FROM earn.accounts a
               LEFT JOIN earn.credit_accounts c USING (shop_id, customer_id)
               WHERE a.customer_id = $1 GROUP BY 1, 2, 3""",
            customer,
        )
        return {r["shop_id"]: (r["points_balance"], r["points_pending"], r["credit"]) for r in rows}

    async def ledger(self, customer: str) -> Counter[tuple[str, str, str, int]]:
        """(shop, kind, balance kind, delta) of every entry."""
        rows = await self.db.fetch(
            "SELECT shop_id, kind, balance_kind, delta FROM earn.ledger WHERE customer_id = $1",
            customer,
        )
        return Counter((r["shop_id"], r["kind"], r["balance_kind"], r["delta"]) for r in rows)

    async def get(self, path: str, shop: str | None) -> httpx.Response:
        return await self.client.get(path, headers=at_shop(shop))

    async def post(
        self, path: str, shop: str | None, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = at_shop(shop) | {"Idempotency-Key": unique("k"), "X-API-Key": ADMIN_KEY}
        return await self.client.post(path, json=body, headers=headers)


def at_shop(shop: str | None) -> dict[str, str]:
    return {} if shop is None else {"X-Shop-Id": shop}


@pytest.fixture(scope="module")
async def shops(infrastructure: Endpoints, producer: AIOKafkaProducer) -> AsyncIterator[Shops]:
    async with (
        earn_of_its_own(
            infrastructure,
            "shops",
            programmes=book(),
            clock=FixedClock(T0 + timedelta(hours=2)),
            admin_api_key=SecretStr(ADMIN_KEY),
        ) as own,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=own.app),
            base_url="http://earn",
            headers={"X-API-Key": ADMIN_KEY},
        ) as client,
    ):
        db = await asyncpg.create_pool(own.database_url, min_size=1, max_size=2)
        assert db is not None
        try:
            yield Shops(db, client, producer, infrastructure.kafka_bootstrap)
        finally:
            await db.close()


async def test_two_shops_streams_on_the_same_customer_and_order_ids_stay_apart(
    shops: Shops,
) -> None:
    customer, order_id = unique("c"), unique("o")
    # A gold tier (x2) at the VN shop only: the US shop's order earns no multiplier.
    await shops.publish("loyalty.tiers", tier_changed(VN, customer, "2"))
    await eventually(
        lambda: shops.db.fetch(
            "SELECT shop_id FROM earn.customer_tiers WHERE customer_id = $1", customer
        ),
        lambda rows: [r["shop_id"] for r in rows] == [VN],
    )
    async with TopicTail(shops.kafka, "loyalty.points") as points:
        await shops.publish("shop.customers", signed_up(VN, customer), signed_up(US, customer))
        await shops.publish(
            "shop.orders",
            paid(VN, customer, order_id, "VND", "259000"),
            paid(US, customer, order_id, "USD", "100"),
        )
        # VND 259,000: 25 points x2 (gold), 2% cashback; USD 100 of apparel: 100 x2 (products).
        await eventually(
            lambda: shops.accounts(customer),
            lambda a: a == {VN: (50 + 50, 0, 5180), US: (5 + 200, 0, 0)},
        )
        # The VN shop refunds its order in full; the US shop's order of the same id stays.
        await shops.publish("shop.orders", refunded(VN, customer, order_id, "VND"))
        await eventually(
            lambda: shops.accounts(customer),
            lambda a: a == {VN: (50, 0, 0), US: (205, 0, 0)},
        )
        # Earn services of other test runs may share the broker, and know no shops: this
        # earn's events are those of the two shops.
        published = await points.collect(
            lambda r: (
                r.key == customer.encode() and json.loads(r.value)["data"]["shop_id"] != "default"
            ),
            count=7,
        )

    assert await shops.ledger(customer) == Counter(
        [
            (VN, "earned", "points", 50),  # sign-up
            (VN, "earned", "points", 50),  # order
            (VN, "earned", "store_credit", 5180),
            (VN, "reversed", "points", -50),
            (VN, "reversed", "store_credit", -5180),
            (US, "earned", "points", 5),  # sign-up
            (US, "earned", "points", 200),  # order
        ]
    )
    announced = [json.loads(r.value)["data"] for r in published]
    assert Counter((d["shop_id"], d["delta"]) for d in announced) == Counter(
        (shop, delta) for shop, _, _, delta in (await shops.ledger(customer)).elements()
    )
    orders = await shops.db.fetch(
        "SELECT shop_id, points, points_reversed FROM earn.orders WHERE order_id = $1", order_id
    )
    assert sorted((r["shop_id"], r["points"], r["points_reversed"]) for r in orders) == [
        (US, 200, 0),
        (VN, 50, 50),
    ]


async def test_an_event_of_a_shop_without_a_programme_is_dead_lettered_as_unknown_shop(
    shops: Shops,
) -> None:
    customer = unique("c")
    stranger = paid("no-such-shop", customer, unique("o"), "USD", "10")
    async with TopicTail(shops.kafka, "shop.orders.dlq") as dead:
        await shops.publish("shop.orders", stranger)
        (letter,) = await dead.collect(lambda r: r.key == customer.encode(), count=1)

    assert dict(letter.headers)["x-dlq-error-class"] == b"UnknownShop"
    assert await shops.accounts(customer) == {}


async def test_every_route_sees_only_its_shop(shops: Shops) -> None:
    only_vn, both = unique("c"), unique("c")
    await shops.publish(
        "shop.orders",
        paid(VN, only_vn, unique("o"), "VND", "1000000"),  # 100 points, 20,000 VND credit
        paid(VN, both, unique("o"), "VND", "500000"),
        paid(US, both, unique("o"), "USD", "30"),
    )
    await eventually(
        lambda: shops.accounts(both), lambda a: a == {VN: (50, 0, 10000), US: (60, 0, 0)}
    )
    await eventually(lambda: shops.accounts(only_vn), lambda a: VN in a)

    # Reads: the customer known only at VN is unknown elsewhere, also at the default shop.
    for path in (f"/v1/customers/{only_vn}/balance", f"/v1/customers/{only_vn}/ledger"):
        assert (await shops.get(path, VN)).status_code == 200
        assert (await shops.get(path, US)).status_code == 404
        assert (await shops.get(path, None)).status_code == 404
    balance = (await shops.get(f"/v1/customers/{both}/balance", US)).json()
    assert (balance["points"]["available"], balance["store_credit"]) == (60, [])
    ledger = (await shops.get(f"/v1/customers/{both}/ledger", US)).json()
    assert [i["delta"] for i in ledger["items"]] == [60]

    # Catalogues are the shops' own; a shop without a programme has none.
    def codes(r: httpx.Response) -> list[str]:
        return [reward["code"] for reward in r.json()["rewards"]]

    assert codes(await shops.get("/v1/rewards", VN)) == ["vn-voucher"]
    assert codes(await shops.get("/v1/rewards", US)) == ["us-voucher"]
    assert (await shops.get("/v1/rewards", "no-such-shop")).status_code == 404

    # Redemptions: unknown customer elsewhere; a redemption is found and cancelled only at its
    # shop; VN's redemption moves VN's points only.
    redeem = {"reward": "vn-voucher", "currency": "VND"}
    us_redeem = {"reward": "us-voucher", "currency": "USD"}
    refused = await shops.post(f"/v1/customers/{only_vn}/redemptions", US, us_redeem)
    assert (refused.status_code, refused.json()["code"]) == (404, "unknown_customer")
    done = await shops.post(f"/v1/customers/{both}/redemptions", VN, redeem)
    assert done.status_code == 201, done.text
    redemption = done.json()["redemption_id"]
    assert (await shops.get(f"/v1/redemptions/{redemption}", US)).status_code == 404
    assert (await shops.post(f"/v1/redemptions/{redemption}/cancel", US)).status_code == 404
    assert (await shops.get(f"/v1/redemptions/{redemption}", VN)).json()["status"] == "issued"
    assert await shops.accounts(both) == {VN: (40, 0, 10000), US: (60, 0, 0)}

    # Store credit spends: the same.
    spend = {"currency": "VND", "amount": "5000"}
    refused = await shops.post(f"/v1/customers/{only_vn}/store-credit/spend", US, spend)
    assert (refused.status_code, refused.json()["code"]) == (404, "unknown_customer")
    spent = await shops.post(f"/v1/customers/{both}/store-credit/spend", VN, spend)
    assert spent.status_code == 201, spent.text
    spend_id = spent.json()["spend_id"]
    assert (await shops.get(f"/v1/store-credit/spends/{spend_id}", US)).status_code == 404
    cancel = f"/v1/store-credit/spends/{spend_id}/cancel"
    assert (await shops.post(cancel, US)).status_code == 404
    assert (await shops.get(f"/v1/store-credit/spends/{spend_id}", VN)).status_code == 200
    assert await shops.accounts(both) == {VN: (40, 0, 5000), US: (60, 0, 0)}

    # Adjustments: a deduction needs the customer at the shop; a grant at US is US's.
    deduct = {"points": -1, "reason": "correction"}
    refused = await shops.post(f"/v1/admin/customers/{only_vn}/adjustments", US, deduct)
    assert (refused.status_code, refused.json()["code"]) == (404, "unknown_customer")
    granted = await shops.post(
        f"/v1/admin/customers/{both}/adjustments", US, {"points": 7, "reason": "goodwill"}
    )
    assert granted.status_code == 201, granted.text
    assert await shops.accounts(both) == {VN: (40, 0, 5000), US: (67, 0, 0)}

    # The same bulk grant batch id at two shops is two batches, each crediting its own shop.
    batch = {
        "batch_id": unique("b"),
        "reason": "launch",
        "grants": [{"customer_id": both, "points": 3}],
    }
    for shop in (VN, US):
        report = await shops.post("/v1/admin/bulk-grants", shop, batch)
        assert (report.status_code, report.json()["granted"]) == (200, 1), report.text
    assert await shops.accounts(both) == {VN: (43, 0, 5000), US: (70, 0, 0)}


async def test_the_same_idempotency_key_at_two_shops_is_two_requests(shops: Shops) -> None:
    customer = unique("c")
    key = unique("k")
    headers = {"Idempotency-Key": key, "X-API-Key": ADMIN_KEY}
    body = {"points": 9, "reason": "goodwill"}
    path = f"/v1/admin/customers/{customer}/adjustments"
    for shop in (VN, US):
        answer = await shops.client.post(path, json=body, headers=headers | {"X-Shop-Id": shop})
        assert answer.status_code == 201, answer.text
        assert "Idempotent-Replayed" not in answer.headers
    again = await shops.client.post(path, json=body, headers=headers | {"X-Shop-Id": US})

    assert again.headers["Idempotent-Replayed"] == "true"
    assert await shops.accounts(customer) == {VN: (9, 0, 0), US: (9, 0, 0)}


# --- replay after a programme change ----------------------------------------------------


@dataclass
class Harness:
    pool: asyncpg.Pool
    consumer: BatchConsumer
    clock: FixedClock

    async def deliver(self, *events: CloudEvent[Any]) -> None:
        records = [
            consumer_record(encoded(e), offset=n, key=e.subject.encode())
            for n, e in enumerate(events)
        ]
        await self.consumer.process(records)

    async def points(self, customer: str) -> list[int]:
        rows = await self.pool.fetch(
            "SELECT delta FROM earn.ledger WHERE customer_id = $1 ORDER BY occurred_at", customer
        )
        return [r["delta"] for r in rows]


async def harness(url: str, programmes: ProgrammeBook, now: datetime) -> Harness:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    clock = FixedClock(now)
    settings = EarnSettings(database_url=SecretStr(url))
    service = definition(
        settings, clock=clock, programmes=programmes, directory=caught_up_directory()
    )
    components = [("messaging", MESSAGING_MIGRATIONS), (service.name, service.migrations)]
    async with pool.acquire() as conn:
        await apply_migrations(conn, service.schema, components)
    consumer = BatchConsumer(
        service=service.name,
        schema=service.schema,
        topic="shop.orders",
        handler=service.handlers["shop.orders"],
        clock=clock,
    )
    consumer.bind(pool, lambda: None)
    return Harness(pool, consumer, clock)


def rate(per_amount: int) -> Programme:
    return parse_programme({"currencies": {"VND": {"per_amount": per_amount}}})


async def test_a_replay_after_a_new_programme_version_gives_the_original_points(
    infrastructure: Endpoints,
) -> None:
    customer = unique("c")
    programmes = ProgrammeBook.fixed(rate(1))
    programmes.add_version(VN, T0 - timedelta(days=30), rate(10_000))
    before = paid(VN, customer, unique("o"), "VND", "259000", at=T0)
    async with database_of_its_own(infrastructure.database_url, "loyalty_replay_a") as url:
        first = await harness(url, programmes, T0)
        try:
            await first.deliver(before)
            assert await first.points(customer) == [25]
            # Ten times the points from tomorrow on: yesterday's order keeps its 25.
            programmes.add_version(VN, T0 + timedelta(days=1), rate(1_000))
            first.clock.set(T0 + timedelta(days=2))
            after = paid(VN, customer, unique("o"), "VND", "259000", at=T0 + timedelta(days=2))
            await first.deliver(before, after)
            assert await first.points(customer) == [25, 259]
        finally:
            await first.pool.close()

    # The whole history again, into a fresh ledger, a month later.
    async with database_of_its_own(infrastructure.database_url, "loyalty_replay_b") as url:
        replay = await harness(url, programmes, T0 + timedelta(days=30))
        try:
            await replay.deliver(before, after)
            assert await replay.points(customer) == [25, 259]
        finally:
            await replay.pool.close()


async def test_scheduled_passes_work_each_shop_under_its_own_programme(
    infrastructure: Endpoints,
) -> None:
    customer = unique("c")
    vn = parse_programme(
        {
            "currencies": {"VND": {"per_amount": 10_000}},
            "pending": {"return_window_days": 14, "completion_timeout_days": 30},
            "expiry": {"mode": "after_months", "months": 1, "warn_days": 0},
        }
    )
    programmes = book()
    programmes.add_version(VN, T0 - timedelta(days=1), vn)
    later = T0 + timedelta(days=365)
    async with database_of_its_own(infrastructure.database_url, "loyalty_passes") as url:
        earn = await harness(url, programmes, T0)
        try:
            await earn.deliver(
                paid(VN, customer, unique("o"), "VND", "259000"),
                paid(US, customer, unique("o"), "USD", "30"),  # no return window: available
            )
            # A pass that knows only the file (`loyalty earn release`) leaves other shops' orders.
            async with earn.pool.acquire() as conn, conn.transaction():
                file_only = ProgrammeBook.fixed(rate(1))
                assert await release_due(PostgresUnitOfWork(conn), file_only, due_by=later) == 0
                assert await release_due(PostgresUnitOfWork(conn), programmes, due_by=later) == 1
            assert await balances(earn.pool, customer) == {VN: 25, US: 60}

            # VN's points expire a month after their release; US's never do.
            report = await expire_due(transactions(earn.pool), programmes, now=later, chunk=10)
            assert (report.accounts, report.expired_points) == (1, 25)
            assert await balances(earn.pool, customer) == {VN: 0, US: 60}
        finally:
            await earn.pool.close()


async def balances(pool: asyncpg.Pool, customer: str) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT shop_id, points_balance FROM earn.accounts WHERE customer_id = $1", customer
    )
    return {r["shop_id"]: r["points_balance"] for r in rows}

"""A simulated shop driven through the real services (earn, tiering, notify, analytics): the
report's figures equal an independent computation from the raw events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import analytics_expected as expected
import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from notify_support import RunDue, cart_abandoned, event_of
from pydantic import SecretStr
from support import TopicTail, encoded, eventually, own_groups, running, unique
from tiering_tools import tiering_settings

from services.earn.bootstrap import bootstrap as earn_bootstrap
from services.earn.programme import load_programme as load_earn_programme
from services.earn.programme_book import ProgrammeBook
from services.earn.settings import EarnSettings
from services.notify.settings import NotifySettings
from services.tiering.bootstrap import bootstrap as tiering_bootstrap
from services.tiering.programme import load_programme as load_tier_programme
from services.tiering.shops import TierProgrammes
from shared.events import CloudEvent
from shared.runtime import Runtime

OUTPUTS = ("loyalty.points", "loyalty.tiers", "loyalty.notifications")


def period_start() -> datetime:
    """The first day of the month three months back: the report covers three whole months."""
    now = datetime.now(UTC)
    month = now.year * 12 + now.month - 1 - 3
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC)


# Customers of this test: a notify scope of their own, so that the session's passes never send
# what this shop leaves scheduled.
SCOPE = unique("an")
# The test's shop, under the shipped earn and tier programmes (from before any event of it).
SHOP = unique("shop")
SINCE = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def earn(infrastructure: Endpoints) -> AsyncIterator[Runtime]:
    """Earn with the shipped programme for the shop `default` and the test's shop."""
    settings = EarnSettings(
        consumer_group_prefix=own_groups(),
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(infrastructure.database_url),
        log_format="console",
        batch_timeout_ms=20,
        outbox_idle_poll_s=0.05,
    )
    book = ProgrammeBook(load_earn_programme)
    book.add_version(SHOP, SINCE, load_earn_programme())
    app, runtime = earn_bootstrap(settings, programmes=book)
    async with running(app, runtime):
        yield runtime


@pytest.fixture(scope="module")
async def tiering(infrastructure: Endpoints) -> AsyncIterator[Runtime]:
    """Tiering with the shipped programme for the shop `default` and the test's shop."""
    programmes = TierProgrammes(load_tier_programme())
    programmes.add_version(SHOP, SINCE, load_tier_programme())
    app, runtime = tiering_bootstrap(tiering_settings(infrastructure), programmes=programmes)
    async with running(app, runtime):
        yield runtime


class SimulatedShop:
    """Publishes the shop's events and remembers each one for the independent computation."""

    def __init__(self, producer: AIOKafkaProducer, start: datetime) -> None:
        self.producer, self.start = producer, start
        self.shop_id = SHOP
        self.events = expected.Shop(self.shop_id)

    def day(self, days: int, minutes: int = 0) -> datetime:
        # 03:00 UTC is 10:00 in Ho Chi Minh City: outside the customers' quiet hours.
        return self.start + timedelta(days=days, hours=3, minutes=minutes)

    async def publish(self, topic: str, event: CloudEvent[Any], *, record: bool = True) -> None:
        await self.producer.send_and_wait(topic, encoded(event), key=event.subject.encode())
        if record:  # events on the output topics are read back from there instead
            self.events.add(json.loads(encoded(event)))

    async def sign_up(self, days: int, *, consent: bool = True) -> str:
        customer = unique(SCOPE)
        data = {
            "customer_id": customer,
            "email": f"{customer}@mail.example",
            "name": "Trần Thị Bình",
            "locale": "vi-VN",
            "time_zone": "Asia/Ho_Chi_Minh",
            "consent": {"email": consent, "push": False},
            "shop_id": self.shop_id,
        }
        await self.publish(
            "shop.customers", event_of("customer.signed_up", customer, data, self.day(days))
        )
        return customer

    async def order(self, customer: str, days: int, total: int, minutes: int = 0) -> str:
        order_id = unique("o")
        data = {
            "order_id": order_id,
            "customer_id": customer,
            "currency": "VND",
            "items": [
                {
                    "sku": "TEA",
                    "name": "Tea",
                    "category": "home",
                    "quantity": 1,
                    "unit_price": str(total),
                }
            ],
            "totals": {"total": {"amount": str(total), "currency": "VND"}},
            "shop_id": self.shop_id,
        }
        await self.publish(
            "shop.orders", event_of("order.paid", customer, data, self.day(days, minutes))
        )
        return order_id

    async def refund(self, customer: str, order_id: str, days: int, amount: int | None) -> None:
        data = {
            "order_id": order_id,
            "customer_id": customer,
            "refund": {"amount": str(amount or 0), "currency": "VND"},
            "full": amount is None,
            "shop_id": self.shop_id,
        }
        await self.publish(
            "shop.orders", event_of("order.refunded", customer, data, self.day(days))
        )

    async def cancel(self, customer: str, order_id: str, days: int) -> None:
        data = {"order_id": order_id, "customer_id": customer, "shop_id": self.shop_id}
        event = event_of("order.cancelled", customer, data, self.day(days, 30))
        await self.publish("shop.orders", event)

    async def points(self, kind: str, customer: str, delta: int, days: int) -> None:
        data = {
            "entry_id": unique("entry"),
            "customer_id": customer,
            "shop_id": self.shop_id,
            "delta": delta,
            "balance_after": 0,
            "reason": kind,
        }
        await self.publish(
            "loyalty.points", event_of(f"points.{kind}", customer, data, self.day(days))
        )


async def scheduled(db: asyncpg.Pool, customers: list[str], trigger: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM notify.scheduled WHERE customer_id = ANY($1) AND trigger = $2",
            customers,
            trigger,
        )
    )


def figures(
    report: dict[str, Any], shop: SimulatedShop, start: datetime, end: datetime
) -> dict[str, Any]:
    """The report's figures beside the same figures computed from the raw events."""
    events = shop.events
    value_keys = (
        "tier",
        "customers",
        "orders",
        "revenue",
        "average_order_value",
        "average_lifespan_years",
        "lifetime_value",
    )
    tiers = sorted(
        {v["tier"] for v in report["value_by_tier"]}
        | {events.tier(c, end) for c in events.signed_up}
    )
    return {
        "retention": (report["retention"], expected.retention(events, start, end)),
        "purchases": (report["purchases"], expected.purchases(events, start, end)),
        "value": (
            [{k: v[k] for k in value_keys} for v in [report["value"], *report["value_by_tier"]]],
            [expected.value(events, start, end, t) for t in [None, *tiers]],
        ),
        "programme": (
            {
                k: v
                for k, v in report["programme"].items()
                if k not in {"points_reversed", "point_value", "liability_value"}
            },
            expected.programme(events, start, end),
        ),
        "messages": (
            [{k: v for k, v in m.items() if k != "conversion_rate"} for m in report["messages"]],
            expected.messages(events, start, end, 7),
        ),
        "cohorts": (
            [{k: c[k] for k in ("month", "customers", "ordering")} for c in report["cohorts"]],
            expected.cohorts(events, start, end),
        ),
        "tiers_by_month": (report["tiers_by_month"], expected.tiers_by_month(events, start, end)),
        "points_by_month": (
            report["points_by_month"],
            expected.points_by_month(events, start, end),
        ),
    }


@pytest.mark.timeout(240)
async def test_report_figures_equal_an_independent_computation_from_the_raw_events(
    earn: Runtime,
    tiering: Any,
    notify: Any,
    analytics: httpx.AsyncClient,
    run_due: RunDue,
    notify_settings: NotifySettings,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    # The messages of this shop are sent by passes of their own: what it leaves scheduled is
    # never sent by another test's pass.
    own_scope = notify_settings.model_copy(update={"worker_scope": SCOPE})
    start = period_start()
    end = (start + timedelta(days=95)).replace(day=1)
    shop = SimulatedShop(producer, start)
    tails = [TopicTail(infrastructure.kafka_bootstrap, topic) for topic in OUTPUTS]
    for tail in tails:
        await tail.__aenter__()
    try:
        # Customers before the period: one lapsing during it, one loyal, one long gone.
        lapsing = await shop.sign_up(-200)
        loyal = await shop.sign_up(-100)
        gone = await shop.sign_up(-400)
        # Customers acquired during it: one without consent to email, one who never orders.
        new1, new2 = await shop.sign_up(5), await shop.sign_up(33, consent=False)
        browser = await shop.sign_up(20)
        cart1, cart2 = await shop.sign_up(62), await shop.sign_up(62)
        customers = [lapsing, loyal, gone, new1, new2, browser, cart1, cart2]
        await eventually(lambda: scheduled(db, customers, "customer.signed_up"), lambda n: n == 8)
        for days in sorted({-400, -200, -100, 5, 20, 33, 62}):
            await run_due(shop.day(days, 1), own_scope)

        await shop.order(lapsing, -200, 300_000)
        await shop.order(lapsing, -150, 400_000)
        await shop.order(gone, -400, 100_000)
        await shop.order(loyal, -100, 500_000)
        await shop.order(loyal, 10, 6_000_000)  # enough for silver
        await shop.order(loyal, 40, 300_000)
        await shop.order(loyal, 70, 200_000)
        await shop.order(new1, 6, 250_000)
        refunded = await shop.order(new1, 35, 350_000)
        await shop.refund(new1, refunded, 37, 50_000)
        await shop.order(new2, 34, 150_000)
        cancelled = await shop.order(new2, 36, 900_000)
        await shop.cancel(new2, cancelled, 36)
        returned = await shop.order(cart2, 63, 200_000)
        await shop.refund(cart2, returned, 63, None)
        await shop.points("redeemed", loyal, -200, 50)
        await shop.points("expired", new1, -10, 60)

        # Both leave a cart; the first reminders go out an hour later; one of them orders.
        for customer in (cart1, cart2):
            cart = cart_abandoned(customer, shop.day(64), shop_id=shop.shop_id)
            await shop.publish("shop.carts", cart)
        await eventually(lambda: scheduled(db, [cart1, cart2], "cart.abandoned"), lambda n: n == 4)
        await run_due(shop.day(64, 61), own_scope)
        await shop.order(cart1, 65, 400_000)

        async def compare() -> dict[str, Any]:
            for tail in tails:
                for record in await tail.settle(
                    lambda r: (r.key or b"").decode() in customers, seconds=0.5
                ):
                    shop.events.add(json.loads(record.value))
            query = {
                "from": start.date().isoformat(),
                "to": end.date().isoformat(),
                "shop": shop.shop_id,
            }
            response = await analytics.get("/v1/report", params=query)
            assert response.status_code == 200, response.text
            return figures(response.json(), shop, start, end)

        found = await eventually(
            compare,
            lambda f: all(a == b for a, b in f.values()) and len(shop.events.points) >= 15,
            timeout=90,
            interval=1,
        )
    finally:
        for tail in tails:
            await tail.__aexit__(None, None, None)

    # The scenario reaches every kind of figure it is meant to check.
    report, _ = found["retention"]
    assert report["churned"] >= 1 and report["new_customers"] == 5
    messages = {m["trigger"]: m for m in found["messages"][0]}
    assert messages["cart.abandoned"]["converted"] == 1
    assert messages["customer.signed_up"]["suppressed_by_reason"].get("no_consent") == 1
    assert len(found["cohorts"][0]) == 3
    assert any("silver" in m["customers"] for m in found["tiers_by_month"][0])

"""The analytics service as the tests run it: its settings and the platform key they configure,
a service over a database of its own, and a builder of one shop's events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from notify_support import event_of
from pydantic import SecretStr
from shops_support import join_coalition
from support import database_of_its_own, encoded, own_groups, running, unique

from services.analytics.bootstrap import bootstrap
from services.analytics.settings import AnalyticsSettings
from shared.clock import Clock
from shared.events import CloudEvent

# The analytics platform key the tests configure (LOYALTY_ANALYTICS_API_KEY).
ANALYTICS_KEY = "analytics-platform-key-for-tests"


def analytics_settings(infrastructure: Endpoints) -> AnalyticsSettings:
    return AnalyticsSettings(
        consumer_group_prefix=own_groups(),
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(infrastructure.database_url),
        log_format="console",
        batch_timeout_ms=20,
        outbox_idle_poll_s=0.05,
        analytics_api_key=SecretStr(ANALYTICS_KEY),
    )


@asynccontextmanager
async def analytics_service(
    infrastructure: Endpoints,
    database: str,
    *,
    clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An analytics service (UTC, VND unless `overrides` say otherwise; the system clock unless
    one is given) with a database of its own named after `database`, its API client and that
    database's URL."""
    async with database_of_its_own(infrastructure.database_url, database) as url:
        defaults: dict[str, Any] = {"analytics_time_zone": "UTC", "analytics_currency": "VND"}
        settings = AnalyticsSettings(
            consumer_group_prefix=own_groups(),
            kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
            database_url=SecretStr(url),
            log_format="console",
            batch_timeout_ms=20,
            outbox_idle_poll_s=0.05,
            analytics_api_key=SecretStr(ANALYTICS_KEY),
            **{**defaults, **overrides},
        )
        app, runtime = bootstrap(settings, clock=clock)
        transport = httpx.ASGITransport(app=app)
        async with (
            running(app, runtime),
            httpx.AsyncClient(
                transport=transport,
                base_url="http://analytics",
                headers={"X-API-Key": ANALYTICS_KEY},
            ) as api,
        ):
            yield api, url


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=3, tzinfo=UTC)


class ShopEvents:
    """Builds the events of one shop; with `coalition`, of a member shop whose points and tier
    are the coalition's account's (shop_id the coalition, at_shop this shop)."""

    def __init__(self, coalition: str | None = None) -> None:
        self.id = unique("shop")
        self.coalition = coalition

    def _account(self) -> dict[str, str]:
        if self.coalition is None:
            return {"shop_id": self.id}
        return {"shop_id": self.coalition, "at_shop": self.id}

    def signed_up(self, customer: str, day: str) -> CloudEvent[Any]:
        data = {
            "customer_id": customer,
            "email": f"{customer}@mail.example",
            "name": "Phạm Minh Châu",
            "locale": "vi-VN",
            "time_zone": "Asia/Ho_Chi_Minh",
            "consent": {"email": True, "push": False},
            "shop_id": self.id,
        }
        return event_of("customer.signed_up", customer, data, at(day))

    def paid(self, customer: str, day: str, total: int) -> CloudEvent[Any]:
        data = {
            "order_id": unique("o"),
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
            "shop_id": self.id,
        }
        return event_of("order.paid", customer, data, at(day))

    def points(self, kind: str, customer: str, day: str, delta: int) -> CloudEvent[Any]:
        data = {
            "entry_id": unique("entry"),
            "customer_id": customer,
            **self._account(),
            "delta": delta,
            "balance_after": max(delta, 0),
            "reason": kind,
        }
        return event_of(f"points.{kind}", customer, data, at(day))

    def tier(self, customer: str, day: str, tier: str) -> CloudEvent[Any]:
        data = {
            "customer_id": customer,
            **self._account(),
            "from_tier": None,
            "to_tier": tier,
            "direction": "up",
            "reason": "qualified",
            "qualifying_amount": "10000000",
            "basis": "spend",
            "currency": "VND",
            "effective_at": at(day).isoformat(),
        }
        return event_of("tier.changed", customer, data, at(day))

    def sent(self, customer: str, day: str, trigger: str) -> CloudEvent[Any]:
        return self.notified("sent", customer, day, trigger)

    def notified(
        self, outcome: str, customer: str, day: str, trigger: str, **details: str
    ) -> CloudEvent[Any]:
        """notification.<outcome>, with its `reason` (suppressed) or `error` (failed)."""
        data = {
            "notification_id": unique("n"),
            "customer_id": customer,
            "shop_id": self.id,
            "trigger": trigger,
            "channel": "email",
            "template": trigger,
            **details,
        }
        return event_of(f"notification.{outcome}", customer, data, at(day))

    def membership(self, kind: str, customer: str, cancelled: str | None = None) -> Any:
        data = {
            "customer_id": customer,
            "shop_id": self.id,
            "tier": "vip",
            "starts_at": at("1986-02-01").isoformat(),
            "ends_at": at("1987-02-01").isoformat(),
            "order_id": f"membership-{customer}",
        }
        if cancelled is not None:
            data["cancelled_at"] = at(cancelled).isoformat()
        return event_of(f"membership.{kind}", customer, data, at(cancelled or "1986-02-01"))


TOPIC_OF = {
    "customer": "shop.customers",
    "order": "shop.orders",
    "points": "loyalty.points",
    "tier": "loyalty.tiers",
    "notification": "loyalty.notifications",
    "membership": "loyalty.memberships",
}


async def join(producer: AIOKafkaProducer, url: str, coalition: str, shops: list[str]) -> None:
    """Each shop a member of `coalition` since always, until the directory of the analytics
    service over the database at `url` has recorded it."""

    async def recorded() -> set[str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT shop_id FROM analytics.shop_memberships WHERE shop_id = ANY($1)", shops
            )
        finally:
            await conn.close()
        return {r["shop_id"] for r in rows}

    await join_coalition(producer, coalition, shops, recorded)


async def publish(producer: AIOKafkaProducer, events: list[CloudEvent[Any]]) -> None:
    for event in events:  # one key per customer: all its events in one partition, in order
        topic = TOPIC_OF[event.type.partition(".")[0]]
        await producer.send_and_wait(topic, encoded(event), key=event.subject.encode())

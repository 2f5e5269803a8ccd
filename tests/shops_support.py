"""The shops service in the test process, and keys made for the tests through its use cases."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from pydantic import SecretStr
from support import encoded, eventually, own_groups, running

from services.shops import handlers
from services.shops.bootstrap import bootstrap
from services.shops.settings import ShopsSettings
from shared.events import make_event
from shared.events.fields import EVENT_TIME_START
from shared.events.shops import Scope, ShopCoalitionChanged
from shared.runtime import Runtime

JOIN_ATTEMPTS = 3


@dataclass(frozen=True)
class ShopsService:
    runtime: Runtime
    api: httpx.AsyncClient
    platform_key: str

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.require_pool()

    def as_key(self, key: str) -> dict[str, str]:
        return {"X-API-Key": key}

    @property
    def platform(self) -> dict[str, str]:
        return self.as_key(self.platform_key)

    async def new_key(self, shop_id: str | None, scopes: list[Scope]) -> str:
        async with self.pool.acquire() as conn:
            made = await handlers.create_key(
                conn, handlers.Change("test", datetime.now(UTC)), shop_id=shop_id, scopes=scopes
            )
        return made.secret

    async def new_shop(self, shop_id: str, template: str = "vn-fashion") -> dict[str, Any]:
        response = await self.api.post(
            "/v1/shops", json={"shop_id": shop_id, "template": template}, headers=self.platform
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def new_coalition(
        self, coalition_id: str, *members: str, template: str = "vn-fashion"
    ) -> None:
        """A coalition from `template`, and `members` new shops of it from the start."""
        made = await self.api.post(
            "/v1/coalitions",
            json={"coalition_id": coalition_id, "template": template},
            headers=self.platform,
        )
        assert made.status_code == 201, made.text
        for shop in members:
            created = await self.api.post(
                "/v1/shops",
                json={"shop_id": shop, "template": template, "coalition_id": coalition_id},
                headers=self.platform,
            )
            assert created.status_code == 201, created.text


def shops_settings(infrastructure: Endpoints, **settings: Any) -> ShopsSettings:
    defaults: dict[str, Any] = {
        "consumer_group_prefix": own_groups(),
        "kafka_bootstrap_servers": infrastructure.kafka_bootstrap,
        "database_url": SecretStr(infrastructure.database_url),
        "log_format": "console",
        "outbox_idle_poll_s": 0.05,
    }
    return ShopsSettings(**(defaults | settings))


@contextlib.asynccontextmanager
async def shops_service(infrastructure: Endpoints, **settings: Any) -> AsyncIterator[ShopsService]:
    """The shops service running, with a platform key of its own; `settings` override
    ShopsSettings."""
    app, runtime = bootstrap(shops_settings(infrastructure, **settings))
    transport = httpx.ASGITransport(app=app)
    async with (
        running(app, runtime),
        httpx.AsyncClient(transport=transport, base_url="http://shops") as api,
    ):
        service = ShopsService(runtime, api, "")
        key = await service.new_key(None, ["platform"])
        yield ShopsService(runtime, api, key)


async def join_coalition(
    producer: AIOKafkaProducer,
    coalition: str,
    shops: list[str],
    recorded: Callable[[], Awaitable[set[str]]],
) -> None:
    """Each shop a member of `coalition` since always, on loyalty.shops, until `recorded` (the
    shops a service's directory holds) names them all. A version is recorded once however often
    it is told; told again when a rebalance of the shared broker's groups (which start at the
    topic's end) skipped it."""
    for attempt in range(1, JOIN_ATTEMPTS + 1):
        for shop in set(shops) - await recorded():
            joined = ShopCoalitionChanged(
                shop_id=shop,
                version=1,
                coalition_id=coalition,
                effective_from=EVENT_TIME_START,
                changed_by="tests",
            )
            event = make_event(
                "shop.coalition_changed", source="tests/shops", subject=shop, data=joined
            )
            await producer.send_and_wait("loyalty.shops", encoded(event), key=shop.encode())
        try:
            await eventually(recorded, lambda found: found == set(shops), timeout=20)
        except AssertionError:
            if attempt == JOIN_ATTEMPTS:
                raise
        else:
            return

"""The shops service in the test process, and keys made for the tests through its use cases."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from infrastructure import Endpoints
from pydantic import SecretStr
from support import own_groups, running

from services.shops import handlers
from services.shops.bootstrap import bootstrap
from services.shops.settings import ShopsSettings
from shared.events.shops import Scope
from shared.runtime import Runtime


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

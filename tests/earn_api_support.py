"""An earn service with a rewards catalogue, in a database of its own, and a client of its API."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from earn_support import earn_of_its_own
from infrastructure import Endpoints
from pydantic import SecretStr

from services.earn.programme import Programme, parse_programme
from shared.runtime import Runtime
from shared.shop_directory import ShopDirectory

# LOYALTY_ADMIN_API_KEY: a platform key of earn, which the client sends unless told otherwise.
ADMIN_KEY = "earn-admin-key-for-tests"
ADMIN = {"X-API-Key": ADMIN_KEY}

REWARDS: list[dict[str, Any]] = [
    {
        "code": "voucher-50k",
        "name": "50,000 VND voucher",
        "kind": "voucher",
        "cost_points": 100,
        "value": {"VND": "50000"},
        "valid_days": 30,
    },
    {
        "code": "voucher-any",
        "name": "Voucher in either currency",
        "kind": "voucher",
        "cost_points": 200,
        "value": {"VND": "100000", "USD": "4.00"},
    },
    {
        "code": "pay-with-points",
        "name": "Points as money at checkout",
        "kind": "points_as_money",
        "cost_points": 10,
        "value": {"VND": "1000", "USD": "0.05"},
    },
    {"code": "free-shipping", "name": "Free shipping", "kind": "free_shipping", "cost_points": 50},
    {
        "code": "tea-gift",
        "name": "A tea sampler",
        "kind": "gift",
        "cost_points": 300,
        "sku": "TEA-1",
    },
    {
        "code": "retired",
        "name": "No longer offered",
        "kind": "free_shipping",
        "cost_points": 10,
        "active": False,
    },
]


def programme() -> Programme:
    """VND 10000/1 and USD 1/1; orders' points stay pending 14 days after completion."""
    return parse_programme(
        {
            "currencies": {"VND": {"per_amount": 10000}, "USD": {"per_amount": 1}},
            "pending": {"return_window_days": 14, "completion_timeout_days": 30},
            "rewards": REWARDS,
        },
        source="tests",
    )


@dataclass(frozen=True)
class EarnApi:
    runtime: Runtime
    client: httpx.AsyncClient
    db: asyncpg.Pool
    directory: ShopDirectory

    async def grant(self, customer_id: str, points: int) -> None:
        """Credit points with an admin adjustment."""
        response = await self.client.post(
            f"/v1/admin/customers/{customer_id}/adjustments",
            json={"points": points, "reason": "test credit"},
            headers={**ADMIN, "Idempotency-Key": key()},
        )
        assert response.status_code == 201, response.text

    async def redeem(
        self, customer_id: str, body: dict[str, Any], **headers: str
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/customers/{customer_id}/redemptions",
            json=body,
            headers={"Idempotency-Key": key(), **headers},
        )

    async def balance(self, customer_id: str) -> int:
        value = await self.db.fetchval(
            "SELECT points_balance FROM earn.accounts WHERE customer_id = $1", customer_id
        )
        return int(value)

    async def ledger_sum(self, customer_id: str) -> int:
        value = await self.db.fetchval(
            "SELECT sum(delta) FROM earn.ledger WHERE customer_id = $1 AND currency IS NULL",
            customer_id,
        )
        return int(value)


def key() -> str:
    return uuid.uuid4().hex


@contextlib.asynccontextmanager
async def earn_api(
    infrastructure: Endpoints, *, with_programme: Programme | None = None
) -> AsyncIterator[EarnApi]:
    """The service running `with_programme`, by default the rewards programme above."""
    async with (
        earn_of_its_own(
            infrastructure,
            "earn_api",
            programme=with_programme or programme(),
            db_pool_max=10,
            admin_api_key=SecretStr(ADMIN_KEY),
        ) as own,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=own.app), base_url="http://earn", headers=ADMIN
        ) as client,
    ):
        db = await asyncpg.create_pool(own.database_url, min_size=1, max_size=2)
        assert db is not None
        try:
            yield EarnApi(own.runtime, client, db, own.directory)
        finally:
            await db.close()

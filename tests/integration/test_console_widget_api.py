"""The widget API against the real earn service: the customer's panel from a signed token,
nothing personal for a token that identifies nobody, and one redemption per key."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import jwt
import pytest
from console_support import ConsoleService, console_service, server_timing
from earn_api_support import ADMIN_KEY, EarnApi, earn_api
from infrastructure import Endpoints
from support import unique

from services.console import widget
from services.console.adapters.upstream import Upstream
from services.console.domain.widget_tokens import AUDIENCE

SHOP = "default"  # the shop of earn's own test programme
URLS = {name: f"http://{name}.invalid" for name in ("tiering", "notify", "analytics", "shops")}


@dataclass(frozen=True)
class Stack:
    earn: EarnApi
    console: ConsoleService
    kid: str
    secret: str

    def token(self, customer_id: str, *, secret: str | None = None, lives_s: int = 900) -> str:
        # Minted at the console's clock: a shifted clock shifts the token alike.
        now = int(self.console.clock.now().timestamp())
        claims = {
            "iss": SHOP,
            "sub": customer_id,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + lives_s,
        }
        return jwt.encode(
            claims, secret or self.secret, algorithm="HS256", headers={"kid": self.kid}
        )

    def client(self, customer_id: str | None = None, **token: object) -> httpx.AsyncClient:
        client = self.console.client()
        if customer_id is not None:
            client.headers["Authorization"] = f"Bearer {self.token(customer_id, **token)}"  # type: ignore[arg-type]
        return client


@pytest.fixture(scope="module")
async def stack(infrastructure: Endpoints) -> AsyncIterator[Stack]:
    async with earn_api(infrastructure) as earn:
        transport = httpx.ASGITransport(app=earn.client._transport.app)  # type: ignore[attr-defined]
        upstream = Upstream(
            {"earn": "http://earn", **URLS},
            api_key=ADMIN_KEY,
            timeout_s=2,
            transports={"earn": transport},
        )
        async with console_service(infrastructure, upstream=upstream) as console:
            made = await widget.make_widget_secret(
                console.pool, shop_id=SHOP, by="test", now=console.clock.now()
            )
            yield Stack(earn, console, made.kid, made.secret)


async def test_the_panel_shows_the_balance_affordable_rewards_and_recent_entries(
    stack: Stack,
) -> None:
    customer = unique("c")
    await stack.earn.grant(customer, 120)
    async with stack.client(customer) as client:
        panel = await client.get(f"/widget/v1/shops/{SHOP}/me")
    assert panel.status_code == 200, panel.text
    body = panel.json()
    assert body["customer_id"] == customer
    assert body["balance"]["points"]["available"] == 120
    assert [r["code"] for r in body["rewards"]] == [
        "pay-with-points",
        "free-shipping",
        "voucher-50k",
    ]
    assert [e["delta"] for e in body["recent"]] == [120]
    assert body["tier"] is None  # tiering does not answer here: the panel goes on without it
    assert panel.headers["cache-control"] == "no-store"
    # The secrets' read, and every service asked (tiering too, though it did not answer).
    assert set(server_timing(panel.headers["server-timing"])) == {"db", "earn", "tiering"}


@pytest.mark.parametrize("case", ["forged", "expired", "none"])
async def test_a_token_that_identifies_nobody_gets_nothing_personal(
    stack: Stack, case: str
) -> None:
    customer = unique("c")
    await stack.earn.grant(customer, 500)
    issued = stack.console.clock.now()
    if case == "forged":
        client = stack.client(customer, secret="lws_" + "f" * 43)
    elif case == "expired":
        client = stack.client(customer, lives_s=60)
        stack.console.clock.set(issued + timedelta(minutes=2))
    else:
        client = stack.client()
    try:
        async with client:
            panel = await client.get(f"/widget/v1/shops/{SHOP}/me")
            redeemed = await client.post(
                f"/widget/v1/shops/{SHOP}/me/redemptions",
                json={"reward": "free-shipping"},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
    finally:
        stack.console.clock.set(issued)
    for answer in (panel, redeemed):
        assert answer.status_code == 401
        assert answer.json() == {"code": "token_invalid"}
        assert answer.headers["www-authenticate"] == "Bearer"
    assert await stack.earn.balance(customer) == 500


async def test_one_key_redeems_once_however_many_times_it_is_sent(stack: Stack) -> None:
    customer = unique("c")
    await stack.earn.grant(customer, 300)
    key = str(uuid.uuid4())
    path = f"/widget/v1/shops/{SHOP}/me/redemptions"
    async with stack.client(customer) as client:
        first, second = await asyncio.gather(
            *(
                client.post(path, json={"reward": "voucher-50k"}, headers={"Idempotency-Key": key})
                for _ in range(2)
            )
        )
        again = await client.post(
            path, json={"reward": "voucher-50k"}, headers={"Idempotency-Key": key}
        )
        missing = await client.post(path, json={"reward": "voucher-50k"})
    assert [a.status_code for a in (first, second, again)] == [201, 201, 201], first.text
    codes = {a.json()["voucher_code"] for a in (first, second, again)}
    assert len(codes) == 1
    assert set(server_timing(again.headers["server-timing"])) == {"db", "earn"}
    assert await stack.earn.balance(customer) == 200
    assert await stack.earn.ledger_sum(customer) == 200
    assert missing.status_code == 400
    assert missing.json() == {"code": "idempotency_key_missing"}


async def test_a_reward_the_points_do_not_cover_is_refused_with_earns_code(stack: Stack) -> None:
    customer = unique("c")
    await stack.earn.grant(customer, 20)
    async with stack.client(customer) as client:
        refused = await client.post(
            f"/widget/v1/shops/{SHOP}/me/redemptions",
            json={"reward": "voucher-50k"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert refused.status_code == 409
    assert refused.json() == {"code": "insufficient_points"}

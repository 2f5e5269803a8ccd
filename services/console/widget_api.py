"""The widget's API under /widget/v1: the shop's theme, the customer's panel, redemptions.

A customer is identified by the token the shop's backend signed (docs/widget.md), never by a
cookie; every answer about a customer comes from earn's and tiering's APIs, with the console's
platform key, for that shop only. A token that identifies nobody gets a 401 that says nothing
more, and the element then shows the signed-out view.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.console.adapters.upstream import ShopApi, UpstreamProblem, UpstreamUnavailable
from services.console.adapters.widget_settings import active_secrets
from services.console.context import Console, console_of
from services.console.domain.widget_tokens import TokenInvalid, WidgetCustomer, verify

log = structlog.get_logger()
SCRIPT = Path(__file__).parent / "static/widget/loyalty-widget.js"
router = APIRouter(prefix="/widget/v1/shops/{shop_id}")
RECENT = 5  # ledger entries in the panel
# Idempotency keys from the element are scoped apart from any other caller's at this shop.
KEY_PREFIX = "widget:"
PERSONAL = {"Cache-Control": "no-store"}


class WidgetRefusal(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


class RedemptionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reward: str = Field(min_length=1, max_length=100)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


def install(api: FastAPI) -> None:
    """The routes, and their refusals as small JSON answers (not the console's error pages)."""
    api.include_router(router)

    @api.get("/widget/v1/loyalty-widget.js", include_in_schema=False)
    async def script() -> FileResponse:
        """The element, for any storefront to load (its API base is the script's own URL)."""
        return FileResponse(
            SCRIPT,
            media_type="text/javascript; charset=utf-8",
            headers={
                "Cache-Control": "public, max-age=300",
                "Cross-Origin-Resource-Policy": "cross-origin",
                # A module script is fetched with CORS: any storefront may load this public file.
                "Access-Control-Allow-Origin": "*",
            },
        )

    @api.exception_handler(WidgetRefusal)
    async def refused(request: Request, exc: WidgetRefusal) -> JSONResponse:
        return refusal_answer(exc)


def refusal_answer(refusal: WidgetRefusal) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else {}
    return JSONResponse({"code": refusal.code}, status_code=refusal.status, headers=headers)


async def identify(request: Request, console: Console, api: ShopApi) -> WidgetCustomer:
    """The customer the bearer token names; the read of the shop's secrets counts as `db` in
    the answer's Server-Timing."""
    shop_id = api.shop_id
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise WidgetRefusal(401, "token_invalid")
    with api.timed("db"):
        async with console.pool.acquire() as conn:
            secrets = await active_secrets(conn, shop_id)
    try:
        return verify(token.strip(), shop_id=shop_id, secrets=secrets, now=console.now())
    except TokenInvalid as refused:
        # The reason is for operators; the customer id is not known, the token not logged.
        log.info("widget_token_refused", shop_id=shop_id, reason=refused.reason)
        raise WidgetRefusal(401, "token_invalid") from refused


def shop_api(console: Console, shop_id: str) -> ShopApi:
    return console.shop_api(shop_id, "widget")


@router.get("/theme")
async def theme(request: Request, shop_id: str) -> JSONResponse:
    """What the signed-out view and the formats need: the shop's name, currency and locale."""
    api = shop_api(console_of(request), shop_id)
    shop = await _upstream(api.shop())
    body = {key: shop.get(key) for key in ("shop_id", "name", "currency", "locale")}
    return JSONResponse(
        body, headers={"Cache-Control": "public, max-age=60", **api.server_timing()}
    )


@router.get("/me")
async def me(request: Request, shop_id: str) -> JSONResponse:
    """The customer's panel in one answer: balance, tier and progress, rewards, recent entries."""
    console = console_of(request)
    api = shop_api(console, shop_id)
    customer = await identify(request, console, api)
    who = customer.customer_id
    balance, rewards, ledger, tier, progress = await asyncio.gather(
        _upstream(api.balance(who)),
        _upstream(api.rewards()),
        _upstream(api.ledger(who)),
        _optional(api.tier(who)),
        _optional(api.progress(who)),
    )
    return JSONResponse(
        {
            "customer_id": who,
            "locale": customer.locale,
            "balance": balance,
            "tier": tier,
            "progress": progress,
            "rewards": affordable(balance, rewards),
            "recent": list(ledger.get("items", []))[:RECENT],
        },
        headers={**PERSONAL, **api.server_timing()},
    )


@router.post("/me/redemptions")
async def redeem(
    request: Request,
    shop_id: str,
    body: RedemptionBody,
    idempotency_key: Annotated[str | None, Header(max_length=150)] = None,
) -> JSONResponse:
    """A redemption through earn, with the element's key: a retry answers the first result."""
    console = console_of(request)
    api = shop_api(console, shop_id)
    customer = await identify(request, console, api)
    if not idempotency_key:
        raise WidgetRefusal(400, "idempotency_key_missing")
    key = KEY_PREFIX + idempotency_key
    redemption = await _upstream(api.redeem(customer.customer_id, body.reward, body.currency, key))
    headers = {**PERSONAL, **api.server_timing()}
    return JSONResponse(redemption, status_code=201, headers=headers)


def affordable(balance: dict[str, Any], rewards: dict[str, Any]) -> list[dict[str, Any]]:
    """The active rewards the available points cover, cheapest first; none while blocked."""
    if balance.get("redemptions_blocked"):
        return []
    available = int(balance.get("points", {}).get("available", 0))
    offered = rewards.get("rewards", [])
    fits = [r for r in offered if int(r.get("cost_points", 0)) <= available]
    return sorted(fits, key=lambda r: int(r.get("cost_points", 0)))


async def _upstream(call: Any) -> dict[str, Any]:
    try:
        return dict(await call)
    except UpstreamProblem as problem:
        status = problem.status if problem.status in (404, 409, 422) else 502
        raise WidgetRefusal(status, problem.code or "refused") from problem
    except UpstreamUnavailable as unavailable:
        raise WidgetRefusal(503, "unavailable") from unavailable


async def _optional(call: Any) -> dict[str, Any] | None:
    """Tiering may not know a customer earn knows: the panel then shows no tier."""
    try:
        return dict(await call)
    except UpstreamProblem as problem:
        if problem.status == 404:
            return None
        raise WidgetRefusal(502, problem.code or "refused") from problem
    except UpstreamUnavailable:
        return None

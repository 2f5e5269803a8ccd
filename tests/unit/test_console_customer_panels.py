"""The customer page's panels over a fake transport: each service's answer, its 404 (missing)
or its failure (unavailable) kept apart, and the tier progress read from tiering's answer."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import httpx
from starlette.requests import Request

from services.console.adapters.upstream import ShopApi, Upstream
from services.console.customer_panels import CustomerPanels, Panel, customer_panels, progress_of
from services.console.rendering import render

URLS = {name: f"http://{name}" for name in ("earn", "tiering", "notify", "analytics", "shops")}


def shop_api(answer: httpx.MockTransport) -> ShopApi:
    upstream = Upstream(URLS, api_key="lk", timeout_s=1, transports=dict.fromkeys(URLS, answer))
    return ShopApi("vn-fashion", "u_1", upstream)


async def test_a_failing_service_leaves_its_panels_unavailable_and_the_others_whole() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "tiering":
            return httpx.Response(503)
        if request.url.host == "notify":
            return httpx.Response(404, json={"status": 404})
        return httpx.Response(200, json={"customer_id": "c-1", "items": []})

    panels = await customer_panels(shop_api(httpx.MockTransport(answer)), "c-1")

    assert (panels.tier.unavailable, panels.progress.unavailable, panels.history.unavailable) == (
        True,
        True,
        True,
    )
    assert panels.profile.missing and not panels.profile.unavailable
    assert panels.balance.data == {"customer_id": "c-1", "items": []}
    assert not panels.unknown  # earn knows the customer


async def test_a_customer_neither_notify_nor_earn_knows_is_unknown() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"status": 404})

    panels = await customer_panels(shop_api(httpx.MockTransport(answer)), "c-1")

    assert panels.unknown


async def test_the_seven_calls_are_made_at_once() -> None:
    api = shop_api(httpx.MockTransport(lambda r: httpx.Response(200, json={})))

    await customer_panels(api, "c-1", ledger_cursor="42", messages_cursor="7")

    assert sorted(service for service, _ in api.timings) == [
        "earn",
        "earn",
        "notify",
        "notify",
        "tiering",
        "tiering",
        "tiering",
    ]


def test_progress_measures_the_bar_in_the_unit_of_the_amount_needed() -> None:
    answer = {
        "qualifying": [
            {"amount": "40", "currency": "USD"},
            {"amount": "800000", "currency": "VND"},
        ],
        "next": {
            "tier": "gold",
            "tier_name": "Vàng",
            "needed": [{"amount": "1200000", "currency": "VND"}],
        },
    }

    progress = progress_of(answer)

    assert progress is not None
    assert (progress.tier_name, progress.needed, progress.currency) == (
        "Vàng",
        Decimal(1200000),
        "VND",
    )
    assert (progress.value, progress.maximum) == (Decimal(800000), Decimal(2000000))


def test_the_top_tier_has_no_progress() -> None:
    assert progress_of({"qualifying": [], "next": None}) is None
    assert progress_of(None) is None


def test_the_page_says_how_much_more_reaches_the_next_tier_in_the_shops_money() -> None:
    tiering: dict[str, object] = {
        "customer_id": "c-1",
        "tier": "silver",
        "tier_name": "Bạc",
        "floors": [],
        "multiplier": "1.25",
        "since": None,
    }
    progress = {
        "qualifying": [{"amount": "800000", "currency": "VND"}],
        "next": {"tier_name": "Vàng", "needed": [{"amount": "1200000", "currency": "VND"}]},
    }
    panels = CustomerPanels(
        profile=Panel(missing=True),
        messages=Panel(),
        balance=Panel(),
        ledger=Panel(),
        tier=Panel(tiering),
        progress=Panel(progress),
        history=Panel({"items": []}),
    )
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    access = SimpleNamespace(shop="vn-fashion", can=lambda capability: False)

    page = bytes(
        render(
            request,
            "customer.html",
            {
                "access": access,
                "customer_id": "c-1",
                "panels": panels,
                "progress": progress_of(progress),
                "form": {},
            },
            language="vi",
        ).body
    ).decode()

    assert "còn 1.200.000\u00a0₫ để lên hạng Vàng" in page
    assert '<progress id="tier-progress" aria-labelledby="progress-label" value="800000"' in page
    assert "Không lấy được dịch vụ điểm" in page  # earn did not answer: its panel says so

"""The demo storefront signs a token for the chosen customer the console accepts, and serves
its page under a CSP that allows only the console's script and API."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import httpx

from services.console.adapters.widget_settings import WidgetSecret
from services.console.domain.widget_tokens import verify
from services.demo_storefront import StorefrontShop, storefront_app

NOW = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
SECRET = WidgetSecret("vn-fashion", "kdemo", "lws_" + "d" * 43)
CONSOLE = "http://127.0.0.1:8006"


async def test_the_shop_page_carries_a_token_for_the_chosen_customer_and_a_strict_csp() -> None:
    shops = {"vn-fashion": StorefrontShop("vn-fashion", "Thời trang", "vi", SECRET)}
    app = storefront_app(CONSOLE, shops, "sim-x-0000", now_s=lambda: int(NOW.timestamp()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8010"
    ) as client:
        default = await client.get("/vn-fashion")
        chosen = await client.get("/vn-fashion", params={"customer": "sim-x-0007"})
        unknown = await client.get("/no-shop")
    tokens = [
        html.unescape(re.search(r'token="([^"]+)"', page.text)[1])  # type: ignore[index]
        for page in (default, chosen)
    ]
    secrets = {SECRET.kid: SECRET.secret}
    customers = [
        verify(t, shop_id="vn-fashion", secrets=secrets, now=NOW).customer_id for t in tokens
    ]
    assert customers == ["sim-x-0000", "sim-x-0007"]
    csp = default.headers["content-security-policy"]
    assert f"script-src {CONSOLE};" in csp
    assert f"connect-src {CONSOLE};" in csp
    assert "unsafe-inline" not in csp
    assert f'src="{CONSOLE}/widget/v1/loyalty-widget.js"' in default.text
    assert unknown.status_code == 404

"""The demo's storefront: a shop page per demo shop with the member widget, under a strict CSP.

It plays the shop's backend: it signs a token for the chosen customer with the shop's widget
secret, as docs/widget.md shows a shop doing.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from services.console import widget
from services.console.adapters import widget_settings
from services.console.adapters.widget_settings import WidgetSecret
from services.console.bootstrap import definition
from services.console.domain.widget_tokens import ALGORITHM, AUDIENCE
from services.console.settings import ConsoleSettings
from shared.db import create_pool
from shared.runtime import prepare_database

TOKEN_LIFETIME_S = 900
DEMO = "demo"  # who made the demo's widget secrets


@dataclass(frozen=True)
class StorefrontShop:
    shop_id: str
    name: str
    lang: str
    secret: WidgetSecret


def token_for(shop: StorefrontShop, customer_id: str, now_s: int) -> str:
    claims = {
        "iss": shop.shop_id,
        "sub": customer_id,
        "aud": AUDIENCE,
        "iat": now_s,
        "exp": now_s + TOKEN_LIFETIME_S,
        "locale": shop.lang,
    }
    return jwt.encode(
        claims, shop.secret.secret, algorithm=ALGORITHM, headers={"kid": shop.secret.kid}
    )


def storefront_app(
    console_url: str,
    shops: Mapping[str, StorefrontShop],
    default_customer: str,
    now_s: Callable[[], int] = lambda: int(time.time()),
) -> Starlette:
    csp = (
        f"default-src 'none'; script-src {console_url}; connect-src {console_url}; "
        "style-src 'self'; img-src 'self' https:; base-uri 'none'; form-action 'self'"
    )

    async def index(request: Request) -> Response:
        links = "".join(
            f'<li><a href="/{html.escape(s.shop_id)}">{html.escape(s.name)}</a></li>'
            for s in shops.values()
        )
        return _page("en", "Demo storefronts", f"<ul>{links}</ul>", csp)

    async def shop_page(request: Request) -> Response:
        shop = shops.get(request.path_params["shop"])
        if shop is None:
            return HTMLResponse("not found", status_code=404)
        customer = request.query_params.get("customer") or default_customer
        token = token_for(shop, customer, now_s())
        body = (
            f'<script type="module" src="{html.escape(console_url)}/widget/v1/loyalty-widget.js">'
            "</script>"
            f"<p>{html.escape(customer)}</p>"
            f'<loyalty-widget shop="{html.escape(shop.shop_id)}" token="{html.escape(token)}"'
            f' lang="{shop.lang}"></loyalty-widget>'
        )
        return _page(shop.lang, shop.name, body, csp)

    return Starlette(routes=[Route("/", index), Route("/{shop}", shop_page)])


def _page(lang: str, title: str, body: str, csp: str) -> HTMLResponse:
    text = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(text, headers={"Content-Security-Policy": csp})


class Storefront:
    """The storefront app on 127.0.0.1:port, in a thread of the demo's process."""

    def __init__(self, app: Starlette, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self.server.run, name="storefront", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)


async def demo_secrets(
    database_url: str, shop_ids: list[str], *, origin: str, now: datetime
) -> dict[str, WidgetSecret]:
    """A fresh widget secret per demo shop (earlier runs' revoked), and the storefront allowed."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await prepare_database(pool, definition(ConsoleSettings()))
        made = {}
        for shop_id in shop_ids:
            async with pool.acquire() as conn:
                await widget_settings.revoke_made_by(conn, shop_id, by=DEMO, now=now)
            await widget.allow_origins(pool, shop_id=shop_id, origins=[origin], by=DEMO, now=now)
            made[shop_id] = await widget.make_widget_secret(pool, shop_id=shop_id, by=DEMO, now=now)
        return made
    finally:
        await pool.close()

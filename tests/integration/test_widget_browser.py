"""The widget in headless Chromium, on a storefront of another origin under a strict CSP, with
the console and earn behind it: a customer redeems once however the button is pressed, a token
that identifies nobody shows nothing personal, and the panel fits a phone and passes axe. The
same console's operations page passes axe in both languages and works with the keyboard."""

from __future__ import annotations

import html
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from aiokafka import AIOKafkaProducer
from browser import axe_check, chromium
from console_support import PASSWORD, ConsoleService, console_service, indexed
from earn_api_support import ADMIN_KEY, EarnApi, earn_api
from infrastructure import Endpoints
from playwright.async_api import Browser, ConsoleMessage, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from support import served, unique

from services.console import widget
from services.console.adapters.upstream import Upstream
from services.console.domain.roles import Role
from services.console.domain.widget_tokens import AUDIENCE

SHOP = "default"  # the shop of earn's own test programme
URLS = {name: f"http://{name}.invalid" for name in ("tiering", "notify", "analytics", "shops")}


def storefront(console_url: str) -> Starlette:
    """A shop's page with the snippet, under a CSP that allows nothing inline."""

    async def page(request: Request) -> HTMLResponse:
        token = html.escape(request.query_params.get("token", ""))
        body = (
            '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>Cửa hàng</title>"
            f'<script type="module" src="{console_url}/widget/v1/loyalty-widget.js"></script>'
            f'</head><body><main><h1>Cửa hàng</h1><loyalty-widget shop="{SHOP}" token="{token}"'
            ' lang="vi"></loyalty-widget></main></body></html>'
        )
        csp = (
            f"default-src 'none'; script-src {console_url}; connect-src {console_url}; "
            "style-src 'self'; img-src 'self'"
        )
        return HTMLResponse(body, headers={"Content-Security-Policy": csp})

    return Starlette(routes=[Route("/", page)])


@dataclass(frozen=True)
class Stack:
    earn: EarnApi
    console: ConsoleService
    browser: Browser
    console_url: str
    shop_url: str
    kid: str
    secret: str

    def token(self, customer_id: str, *, secret: str | None = None) -> str:
        now = int(self.console.clock.now().timestamp())
        claims = {"iss": SHOP, "sub": customer_id, "aud": AUDIENCE, "iat": now, "exp": now + 900}
        return jwt.encode(
            claims, secret or self.secret, algorithm="HS256", headers={"kid": self.kid}
        )

    async def open(self, token: str, **context: Any) -> tuple[Page, list[str]]:
        page = await (await self.browser.new_context(**context)).new_page()
        logged: list[str] = []

        def keep(message: ConsoleMessage) -> None:
            # Failed loads are the browser's own lines (the theme answers 503 here: no shops
            # service runs); what counts is what the script or the CSP says.
            if not message.text.startswith("Failed to load resource"):
                logged.append(message.text)

        def crashed(error: Exception) -> None:
            logged.append(f"uncaught: {error}")

        page.on("console", keep)
        page.on("pageerror", crashed)
        page.set_default_timeout(15_000)
        await page.goto(f"{self.shop_url}/?{httpx.QueryParams(token=token)}")
        return page, logged


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
        async with (
            console_service(
                infrastructure, upstream=upstream, console_dead_letters_index_s=0.2
            ) as console,
            served(console.app) as console_url,
            served(storefront(console_url)) as shop_url,
            chromium() as browser,
        ):
            now = console.clock.now()
            made = await widget.make_widget_secret(console.pool, shop_id=SHOP, by="test", now=now)
            await widget.allow_origins(
                console.pool, shop_id=SHOP, origins=[shop_url], by="test", now=now
            )
            yield Stack(earn, console, browser, console_url, shop_url, made.kid, made.secret)


async def test_customer_redeems_once_when_clicking_twice(stack: Stack) -> None:
    customer = unique("c")
    await stack.earn.grant(customer, 300)
    page, logged = await stack.open(stack.token(customer))
    widget_ = page.locator("loyalty-widget")
    await widget_.locator("#balance").wait_for()
    assert "300" in await widget_.locator("#balance").inner_text()

    await widget_.locator('button.redeem[data-reward="voucher-50k"]').click()
    await widget_.locator("#confirm").dblclick()
    voucher = widget_.locator("#voucher")
    await voucher.wait_for()
    assert len((await voucher.inner_text()).strip()) == 19
    # And the server's guard, not only the disabled button: two requests with one key at once.
    key = str(uuid.uuid4())
    statuses = await page.evaluate(
        """async ([url, token, key]) => {
            const headers = {"Authorization": `Bearer ${token}`, "Idempotency-Key": key,
                "Content-Type": "application/json"};
            const body = JSON.stringify({reward: "free-shipping"});
            const send = () => fetch(url, {method: "POST", headers, body});
            const answers = await Promise.all([send(), send()]);
            return answers.map((a) => a.status);
        }""",
        [f"{stack.console_url}/widget/v1/shops/{SHOP}/me/redemptions", stack.token(customer), key],
    )
    assert statuses == [201, 201]
    assert await stack.earn.balance(customer) == 300 - 100 - 50
    redeemed = await stack.earn.db.fetchval(
        "SELECT count(*) FROM earn.ledger WHERE customer_id = $1 AND kind = 'redeemed'", customer
    )
    assert redeemed == 2
    assert logged == []


@pytest.mark.parametrize("token", ["forged", "none"])
async def test_a_token_that_identifies_nobody_shows_nothing_personal(
    stack: Stack, token: str
) -> None:
    customer = unique("c")
    await stack.earn.grant(customer, 700)
    given = stack.token(customer, secret="lws_" + "f" * 43) if token == "forged" else ""
    page, _ = await stack.open(given)
    widget_ = page.locator("loyalty-widget")
    await widget_.locator(".signed-out").wait_for()
    shown = await widget_.locator("section").inner_text()
    assert "700" not in shown
    assert await widget_.locator("#balance").count() == 0


async def test_widget_fits_a_phone_and_passes_axe(stack: Stack) -> None:
    customer = unique("c")
    await stack.earn.grant(customer, 120)
    page, logged = await stack.open(
        stack.token(customer), viewport={"width": 375, "height": 740}, is_mobile=True
    )
    await page.locator("loyalty-widget #balance").wait_for()
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1]
    assert await axe_check(page) == []
    assert logged == []


async def test_the_operations_page_passes_axe_in_both_languages_and_works_with_the_keyboard(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    # A dead letter of the shop, as a service writes it (the tool reads only the headers), of
    # an error class of its own: the page filtered by it holds one row (axe takes ~70 ms a row).
    error_class = f"BrowserCheck{uuid.uuid4().hex[:8]}"
    headers = [
        ("x-dlq-error-class", error_class.encode()),
        ("x-dlq-service", b"earn"),
        ("x-dlq-error-message", b"no earn rate for currency EUR"),
        ("x-dlq-topic", b"shop.orders"),
    ]
    sent = await producer.send_and_wait(
        "shop.orders.dlq",
        b'{"type": "order.paid", "data": {"shop_id": "default"}}',
        key=unique("c").encode(),
        headers=headers,
    )
    await indexed(stack.console.pool, f"shop.orders.dlq/{sent.partition}/{sent.offset}")
    owner = await stack.console.make_user({SHOP: Role.OWNER}, locale="vi")
    filtered = f"{stack.console_url}/shops/{SHOP}/operations?" + str(
        httpx.QueryParams(topic="shop.orders", error_class=error_class)
    )
    page = await (await stack.browser.new_context()).new_page()
    page.set_default_timeout(15_000)
    await page.goto(f"{stack.console_url}/sign-in")
    await page.fill("#email", owner.email)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_url(f"{stack.console_url}/shops**")
    await page.goto(filtered)
    box = page.locator(
        f'input[name="position"][value="shop.orders.dlq/{sent.partition}/{sent.offset}"]'
    )
    vietnamese = await axe_check(page)

    await box.focus()
    await page.keyboard.press("Space")
    checked = await box.is_checked()
    await page.get_by_role("button", name="English").click()
    await page.wait_for_url(f"{stack.console_url}/shops/{SHOP}/operations**")
    await page.goto(filtered)
    english = await axe_check(page)
    heading = await page.get_by_role("heading", level=1).inner_text()
    rows = await page.locator("#dead-letters tbody tr").count()

    assert await page.get_attribute("html", "lang") == "en"
    assert vietnamese == english == []
    assert checked
    assert (heading, rows) == ("Operations", 1)

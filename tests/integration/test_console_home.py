"""A shop's home page through the console, with the real analytics and shops services behind
it: the overview's figures in the shop's locale, tier names from the shop's tiers programme,
charts with their figures for screen readers, axe in both languages, and a page that says so
when analytics does not answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from analytics_support import ShopEvents, analytics_service, publish
from browser import axe_check, chromium
from console_support import (
    CONSOLE_URLS,
    PASSWORD,
    ConsoleService,
    console_service,
    signed_in,
)
from infrastructure import Endpoints
from playwright.async_api import ConsoleMessage
from shops_support import ShopsService, shops_settings
from support import eventually, running, served, unique

from services.console.adapters.upstream import Upstream
from services.console.domain.roles import Role
from services.shops.bootstrap import bootstrap as shops_bootstrap
from shared.clock import FixedClock

ZONE = "Asia/Ho_Chi_Minh"
# Analytics' clock: 16:00 in Ho Chi Minh City on 17 May 1991, in a database of its own.
NOW = datetime(1991, 5, 17, 9, 0, tzinfo=UTC)
NBSP, NARROW_NBSP = "\u00a0", "\u202f"


@dataclass(frozen=True)
class Stack:
    console: ConsoleService
    analytics: httpx.AsyncClient
    shop: str
    platform_key: str


# The tier names of the vn-fashion template's tiers programme, and no tier.
TIER_NAMES = {"member": "Thành viên", "silver": "Bạc", "gold": "Vàng", "none": "Chưa có hạng"}


def dotted(n: int) -> str:
    """A whole number as a Vietnamese shop writes it: 1.250.000."""
    return f"{n:,}".replace(",", ".")


def plain(text: str) -> str:
    return text.replace(NBSP, " ").replace(NARROW_NBSP, " ")


def events_of(shop: ShopEvents) -> list[Any]:
    ann, ben, cam = unique("ann"), unique("ben"), unique("cam")
    return [
        shop.signed_up(ann, "1991-03-10"),
        shop.points("earned", ann, "1991-03-10", 1_000),
        shop.tier(ann, "1991-03-10", "gold"),
        shop.signed_up(ben, "1991-05-03"),
        shop.points("earned", ben, "1991-05-17", 250),
        shop.tier(ben, "1991-05-17", "silver"),
        shop.points("redeemed", ann, "1991-05-17", -100),
        shop.signed_up(cam, "1991-05-17"),
        shop.sent(ann, "1991-05-17", "welcome"),
        shop.notified("suppressed", cam, "1991-05-17", "welcome", reason="no_consent"),
    ]


@pytest.fixture(scope="module")
async def stack(infrastructure: Endpoints, producer: AIOKafkaProducer) -> AsyncIterator[Stack]:
    app, runtime = shops_bootstrap(shops_settings(infrastructure))
    shops_transport = httpx.ASGITransport(app=app)
    async with (
        analytics_service(
            infrastructure, "loyalty_console_home", clock=FixedClock(NOW), analytics_time_zone=ZONE
        ) as (analytics, _url),
        running(app, runtime),
        httpx.AsyncClient(transport=shops_transport, base_url="http://shops") as api,
    ):
        shops = ShopsService(runtime, api, "")
        shops = ShopsService(runtime, api, await shops.new_key(None, ["platform"]))
        shop = ShopEvents()
        await shops.new_shop(shop.id, "vn-fashion")
        await publish(producer, events_of(shop))
        key = {"X-API-Key": shops.platform_key}

        async def customers() -> Any:
            # Through the shops service's platform key: analytics has learnt it, and the facts
            # are in (the report is not cached).
            month = {"shop": shop.id, "from": "1991-05-01", "to": "1991-05-18"}
            answer = await analytics.get("/v1/report", params=month, headers=key)
            return answer.json()["programme"]["customers"] if answer.status_code == 200 else None

        await eventually(customers, lambda n: n == 3)
        await eventually(
            lambda: analytics.get(
                "/v1/report",
                params={"shop": shop.id, "from": "1991-05-17", "to": "1991-05-18"},
                headers=key,
            ),
            lambda r: (
                r.json()["programme"]["points_redeemed"] == 100 and len(r.json()["messages"]) == 1
            ),
        )
        upstream = Upstream(
            CONSOLE_URLS,
            api_key=shops.platform_key,
            timeout_s=5,
            transports={"shops": shops_transport, "analytics": analytics._transport},
        )
        async with console_service(infrastructure, upstream=upstream) as console:
            yield Stack(console, analytics, shop.id, shops.platform_key)


async def overview_of(stack: Stack) -> Any:
    answer = await stack.analytics.get(
        "/v1/overview",
        params={"shop": stack.shop, "time_zone": ZONE, "currency": "VND"},
        headers={"X-API-Key": stack.platform_key},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.timeout(120)
async def test_the_home_page_shows_the_overview_in_the_shops_locale_with_its_tier_names(
    stack: Stack,
) -> None:
    owner = await stack.console.make_user({stack.shop: Role.READ_ONLY}, locale="vi")
    async with stack.console.client() as client:
        await signed_in(client, owner)
        home = await client.get(f"/shops/{stack.shop}/")
    assert home.status_code == 200, home.text
    page = plain(home.text)
    # The row the page was answered from. The shop is known to every earn and tiering on
    # the shared broker (other test runs' too), which may add their own points for its
    # customers: the page is checked against the overview, the overview against the reports
    # in test_analytics_overview.py.
    overview = await overview_of(stack)
    today, month = overview["today"], overview["month"]
    # Money and numbers as a Vietnamese shop writes them (1.150 points worth 115.000 ₫).
    assert overview["points_outstanding"] >= 1_150
    assert f">{dotted(overview['points_outstanding'])}<" in page
    assert f">{dotted(int(Decimal(overview['points_outstanding_value'])))} ₫<" in page
    # The tiers programme's names, not analytics' codes; no tier in the reader's language.
    counts = {t["tier"]: t["customers"] for t in overview["tiers"]}
    assert set(counts) - {"none"}, counts  # Ann's gold and Ben's silver, or a later tier
    named = "; ".join(f"{TIER_NAMES[code]}: {dotted(n)}" for code, n in counts.items())
    assert f">Khách hàng theo hạng. {named}</title>" in page
    for code in counts:
        assert f">{code}<" not in page
    # Today's and the month's points and messages, and why a message was not sent, in words.
    for label, key in (("Điểm đã cộng", "points_issued"), ("Điểm đã đổi", "points_redeemed")):
        assert f"{label}</th><td>{dotted(today[key])}</td><td>{dotted(month[key])}</td>" in page
    assert today["points_redeemed"] == 100
    # Cam signed up today, Ben earlier this month (Ann before it).
    assert (today["new_customers"], month["new_customers"]) == (1, 2)
    assert "Khách hàng mới</th><td>1</td><td>2</td>" in page
    no_consent = [m["messages"]["suppressed_by_reason"]["no_consent"] for m in (today, month)]
    assert no_consent == [1, 1]
    assert "Chưa đồng ý nhận tin</th><td>1</td><td>1</td>" in page
    # The 30 days' chart and its table (a day's row per day).
    assert page.count('role="img"') == 2
    assert len(overview["daily"]) == 30
    assert page.count('<tr><th scope="row">') >= 30
    assert "Analytics" not in page and "phân tích không phản hồi" not in page
    assert "analytics;dur=" in home.headers["server-timing"]
    assert f'href="/shops/{stack.shop}/report"' in page


async def test_the_full_report_of_the_month_is_analytics_page_under_a_policy_of_its_own(
    stack: Stack,
) -> None:
    reader = await stack.console.make_user({stack.shop: Role.READ_ONLY}, locale="en")
    async with stack.console.client() as client:
        await signed_in(client, reader)
        report = await client.get(f"/shops/{stack.shop}/report")
    assert report.status_code == 200, report.text
    # The month so far in the shop's days, by the console's clock (analytics' stands in 1991).
    today = stack.console.clock.now().astimezone(ZoneInfo(ZONE)).date()
    assert f"{today.replace(day=1).isoformat()}" in report.text
    assert stack.shop in report.text
    assert "<svg" in report.text and "<script" not in report.text
    policy = report.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; style-src 'unsafe-inline'")
    assert "script-src" not in policy
    assert "analytics;dur=" in report.headers["server-timing"]


@pytest.mark.timeout(120)
async def test_the_home_page_says_so_when_analytics_does_not_answer(
    infrastructure: Endpoints, stack: Stack
) -> None:
    # A console whose analytics is nowhere (no transport: the name does not resolve).
    upstream = Upstream(CONSOLE_URLS, api_key=stack.platform_key, timeout_s=2)
    async with console_service(infrastructure, upstream=upstream) as console:
        owner = await console.make_user({stack.shop: Role.OWNER}, locale="en")
        async with console.client() as client:
            await signed_in(client, owner)
            home = await client.get(f"/shops/{stack.shop}/")
            report = await client.get(f"/shops/{stack.shop}/report")
    assert home.status_code == 200, home.text
    assert "Analytics is unavailable" in home.text
    assert 'role="img"' not in home.text
    assert report.status_code == 200
    assert "Analytics is unavailable: the report cannot be shown now." in report.text


@pytest.mark.timeout(120)
async def test_the_home_page_passes_axe_in_both_languages_and_logs_nothing(stack: Stack) -> None:
    owner = await stack.console.make_user({stack.shop: Role.OWNER}, locale="vi")
    logged: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        logged.append(message.text)

    async with served(stack.console.app) as url, chromium() as browser:
        page = await browser.new_page()
        page.on("console", keep)
        await page.goto(f"{url}/sign-in")
        await page.fill("#email", owner.email)
        await page.fill("#password", PASSWORD)
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{url}/shops/{stack.shop}/")
        assert await page.get_by_role("img", name=re.compile("^Khách hàng theo hạng")).is_visible()
        assert await axe_check(page) == []
        await page.get_by_role("button", name="English").click()
        await page.wait_for_url(f"{url}/shops/{stack.shop}/")
        assert await page.get_by_role(
            "heading", name="Today and this month at a glance"
        ).is_visible()
        assert await page.get_by_role("rowheader", name="New customers").is_visible()
        assert await axe_check(page) == []
    assert logged == []

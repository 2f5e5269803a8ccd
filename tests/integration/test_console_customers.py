"""The customers pages against the real earn, tiering and notify services (in this process, on
the real database and broker): search without diacritics, a customer's page from every
service, and another shop's customer a 404."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from console_support import ConsoleService, console_service, csrf_of, signed_in
from earn_api_support import ADMIN_KEY, EarnApi, earn_api
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from notify_support import notify_customer, signed_up
from pydantic import SecretStr
from support import own_groups, running, unique
from tiering_tools import tiering_settings

from services.console.adapters.upstream import Upstream
from services.console.domain.roles import Role
from services.notify import handlers as notify_handlers
from services.notify.bootstrap import bootstrap as notify_bootstrap
from services.notify.settings import NotifySettings
from services.tiering.bootstrap import bootstrap as tiering_bootstrap
from shared.clock import FixedClock
from shared.consumer import Incoming
from shared.runtime import Runtime

SHOP = "default"  # the shop of earn's and tiering's test programmes
OTHER_SHOP = "other-shop"


@dataclass(frozen=True)
class Stack:
    earn: EarnApi
    tiering: httpx.AsyncClient
    notify: Runtime
    notify_api: httpx.AsyncClient
    console: ConsoleService

    async def sign_up(self, name: str, *, shop: str = SHOP) -> str:
        """A customer notify knows, through notify's own handler of customer.signed_up (its
        consumer waits to have read loyalty.shops to its end, most of a minute on a shared
        broker); their id."""
        customer = notify_customer()
        now = datetime.now(UTC)
        event = signed_up(customer, now, email=f"{customer}@mail.example", name=name, shop_id=shop)
        incoming = Incoming("shop.customers", 0, 0, customer.encode(), b"", (), event)
        async with self.notify.require_pool().acquire() as conn, conn.transaction():
            await notify_handlers.on_customers(conn, [incoming], clock=FixedClock(now))
        return customer

    async def manual_tier(self, customer: str, tier: str) -> None:
        ends_at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
        answer = await self.tiering.put(
            f"/v1/customers/{customer}/manual-tier",
            json={"tier": tier, "ends_at": ends_at, "reason": "tests"},
        )
        assert answer.status_code == 200, answer.text


@contextlib.asynccontextmanager
async def asgi_client(app: AsgiFastStream, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-API-Key": ADMIN_KEY}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers) as c:
        yield c


@pytest.fixture(scope="module")
async def stack(infrastructure: Endpoints, notify_settings: NotifySettings) -> AsyncIterator[Stack]:
    """Earn, tiering and notify with one platform key (earn's admin key), and the console
    reaching them with it; the shops service is not there (its panel is unavailable)."""
    key = SecretStr(ADMIN_KEY)
    tiering_app, tiering_runtime = tiering_bootstrap(
        tiering_settings(infrastructure).model_copy(update={"tiering_admin_api_key": key})
    )
    notify_app, notify_runtime = notify_bootstrap(
        notify_settings.model_copy(
            update={"notify_api_key": key, "consumer_group_prefix": own_groups()}
        )
    )
    async with (
        earn_api(infrastructure) as earn,
        running(tiering_app, tiering_runtime),
        running(notify_app, notify_runtime),
        asgi_client(tiering_app, "http://tiering") as tiering,
        asgi_client(notify_app, "http://notify") as notify_api,
    ):
        upstream = Upstream(
            {
                "earn": "http://earn",
                "tiering": "http://tiering",
                "notify": "http://notify",
                "analytics": "http://analytics.invalid",
                "shops": "http://shops.invalid",
            },
            api_key=ADMIN_KEY,
            timeout_s=2,
            transports={
                "earn": httpx.ASGITransport(app=earn.client._transport.app),  # type: ignore[attr-defined]
                "tiering": httpx.ASGITransport(app=tiering_app),
                "notify": httpx.ASGITransport(app=notify_app),
            },
        )
        async with console_service(infrastructure, upstream=upstream) as console:
            yield Stack(earn, tiering, notify_runtime, notify_api, console)
        await upstream.aclose()


@pytest.fixture
async def browser(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A support member of SHOP (and of OTHER_SHOP), signed in, reading English."""
    user = await stack.console.make_user({SHOP: Role.SUPPORT, OTHER_SHOP: Role.SUPPORT})
    async with stack.console.client() as client:
        await signed_in(client, user)
        yield client


async def test_search_finds_nguyen_thi_without_diacritics_and_an_id_earn_alone_knows(
    stack: Stack, browser: httpx.AsyncClient
) -> None:
    family = unique("Nguyễn Thị").replace("-", " ")
    mai = await stack.sign_up(f"{family} Mai")
    lan = await stack.sign_up(f"{family} Lan", shop=OTHER_SHOP)
    never_signed_up = unique("c")
    await stack.earn.grant(never_signed_up, 10)
    folded = family.replace("Nguyễn Thị", "nguyen thi")

    by_name = await browser.get(f"/shops/{SHOP}/customers", params={"q": folded})
    by_id = await browser.get(f"/shops/{SHOP}/customers", params={"q": never_signed_up})
    nobody = await browser.get(f"/shops/{SHOP}/customers", params={"q": unique("nobody")})

    assert by_name.status_code == 200, by_name.text
    assert f"/shops/{SHOP}/customers/{mai}" in by_name.text
    assert f"{family} Mai" in by_name.text
    assert lan not in by_name.text  # another shop's
    assert f"/shops/{SHOP}/customers/{never_signed_up}" in by_id.text
    assert "not signed up" in by_id.text
    assert "No customer matches" in nobody.text
    assert f'href="/shops/{SHOP}/customers"' in by_name.text  # the navigation's entry


async def test_the_customer_page_shows_profile_points_ledger_tier_progress_and_messages(
    stack: Stack, browser: httpx.AsyncClient
) -> None:
    customer = await stack.sign_up("Trần Văn Đức")
    await stack.earn.grant(customer, 1200)
    await stack.manual_tier(customer, "gold")

    page = await browser.get(f"/shops/{SHOP}/customers/{customer}")

    assert page.status_code == 200, page.text
    text = page.text
    assert "<h1>Trần Văn Đức</h1>" in text
    assert f"{customer}@mail.example" in text
    assert '<dd id="balance">1.200</dd>' in text  # the shop's locale: vi-VN by default
    assert "test credit" in text  # the ledger line's reason
    assert '<dd id="tier">Gold</dd>' in text
    assert "5.000.000\u00a0₫ more to reach Silver" in text  # the earned tier is below the floor
    assert '<progress id="tier-progress"' in text
    assert "welcome" in text  # the sign-up's planned message
    assert "earn;dur=" in page.headers["server-timing"]
    assert "The shops service" not in text  # no panel of this page comes from it


async def test_the_page_is_in_vietnamese_with_the_progress_sentence_of_the_issue(
    stack: Stack,
) -> None:
    customer = await stack.sign_up("Lê Thu Hà")
    await stack.manual_tier(customer, "gold")
    user = await stack.console.make_user({SHOP: Role.READ_ONLY}, locale="vi")
    async with stack.console.client() as client:
        await signed_in(client, user)
        page = await client.get(f"/shops/{SHOP}/customers/{customer}")
    assert page.status_code == 200, page.text
    assert "còn 5.000.000\u00a0₫ để lên hạng Silver" in page.text
    assert '<h2 id="profile-heading">Hồ sơ</h2>' in page.text


async def test_another_shops_customer_is_not_found(
    stack: Stack, browser: httpx.AsyncClient
) -> None:
    customer = await stack.sign_up("Phạm Minh Châu")
    await stack.earn.grant(customer, 50)

    elsewhere = await browser.get(f"/shops/{OTHER_SHOP}/customers/{customer}")
    unknown = await browser.get(f"/shops/{SHOP}/customers/{unique('nobody')}")

    assert elsewhere.status_code == 404
    assert unknown.status_code == 404


async def test_a_shop_the_user_is_not_staff_of_is_not_found(stack: Stack) -> None:
    customer = await stack.sign_up("Hoàng Anh")
    user = await stack.console.make_user({OTHER_SHOP: Role.OWNER})
    async with stack.console.client() as client:
        await signed_in(client, user)
        page = await client.get(f"/shops/{SHOP}/customers/{customer}")
        search = await client.get(f"/shops/{SHOP}/customers", params={"q": "hoang"})
    assert (page.status_code, search.status_code) == (404, 404)


# --- actions ---

_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


async def form_of(client: httpx.AsyncClient, customer: str) -> tuple[str, str]:
    """The customer page's CSRF token and the Idempotency-Key rendered into its forms."""
    page = await client.get(f"/shops/{SHOP}/customers/{customer}")
    assert page.status_code == 200, page.text
    found = _KEY.search(page.text)
    assert found is not None, "the page has no action form"
    return csrf_of(page.text), found.group(1)


@contextlib.asynccontextmanager
async def marketer(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A marketer of SHOP, signed in: marketers act on customers as owners and support do."""
    user = await stack.console.make_user({SHOP: Role.MARKETER})
    async with stack.console.client() as client:
        await signed_in(client, user)
        yield client


async def test_a_double_submitted_adjustment_is_one_ledger_entry(stack: Stack) -> None:
    customer = await stack.sign_up("Vũ Thị Thu")
    await stack.earn.grant(customer, 100)
    async with marketer(stack) as client:
        token, key = await form_of(client, customer)
        form = {"csrf_token": token, "idempotency_key": key, "points": "250", "reason": "goodwill"}
        first = await client.post(f"/shops/{SHOP}/customers/{customer}/adjustments", data=form)
        second = await client.post(f"/shops/{SHOP}/customers/{customer}/adjustments", data=form)
        page = await client.get(first.headers["location"])

    adjusted = await stack.earn.db.fetchval(
        "SELECT count(*) FROM earn.ledger WHERE customer_id = $1 AND reason = 'goodwill'",
        customer,
    )
    assert (first.status_code, second.status_code) == (303, 303)
    assert adjusted == 1
    assert await stack.earn.balance(customer) == 350
    assert '<dd id="balance">350</dd>' in page.text
    assert "The points were adjusted." in page.text


async def test_a_refused_deduction_is_shown_beside_its_form_and_changes_nothing(
    stack: Stack,
) -> None:
    customer = await stack.sign_up("Đỗ Quang Huy")
    await stack.earn.grant(customer, 30)
    async with marketer(stack) as client:
        token, key = await form_of(client, customer)
        refused = await client.post(
            f"/shops/{SHOP}/customers/{customer}/adjustments",
            data={"csrf_token": token, "idempotency_key": key, "points": "-500", "reason": "x"},
        )
    assert refused.status_code == 409
    assert "Refused:" in refused.text
    assert 'value="-500"' in refused.text  # the form keeps what was typed
    assert await stack.earn.balance(customer) == 30


async def test_a_manual_tier_is_held_until_the_end_of_the_chosen_day(stack: Stack) -> None:
    customer = await stack.sign_up("Bùi Ngọc Lan")
    ends_on = (datetime.now(UTC) + timedelta(days=40)).date()
    async with marketer(stack) as client:
        token, _key = await form_of(client, customer)
        answer = await client.post(
            f"/shops/{SHOP}/customers/{customer}/manual-tier",
            data={
                "csrf_token": token,
                "tier": "platinum",
                "ends_on": ends_on.isoformat(),
                "reason": "VIP event",
            },
        )
        unknown = await client.post(
            f"/shops/{SHOP}/customers/{customer}/manual-tier",
            data={
                "csrf_token": token,
                "tier": "diamond",
                "ends_on": ends_on.isoformat(),
                "reason": "VIP event",
            },
        )
    tier = (await stack.tiering.get(f"/v1/customers/{customer}/tier")).json()
    assert answer.status_code == 303, answer.text
    assert tier["tier"] == "platinum"
    [floor] = tier["floors"]
    # The end of that day on the shop's wall clock (Ho Chi Minh City: the default).
    assert datetime.fromisoformat(floor["ends_at"]) == datetime.combine(
        ends_on + timedelta(days=1), datetime.min.time(), ZoneInfo("Asia/Ho_Chi_Minh")
    )
    assert unknown.status_code == 422
    assert 'id="tier-tier-error"' in unknown.text  # beside the tier's field
    assert "unknown tier" in unknown.text


async def test_a_message_is_resent_once_per_key_and_a_channel_unsubscribed(stack: Stack) -> None:
    customer = await stack.sign_up("Ngô Bảo Châu")
    messages = (await stack.notify_api.get(f"/v1/customers/{customer}/messages")).json()
    [welcome] = messages["items"]
    async with marketer(stack) as client:
        token, key = await form_of(client, customer)
        resend = f"/shops/{SHOP}/customers/{customer}/messages/{welcome['message_id']}/resend"
        form = {"csrf_token": token, "idempotency_key": key}
        resent = [await client.post(resend, data=form) for _ in range(2)]
        unsubscribed = await client.post(
            f"/shops/{SHOP}/customers/{customer}/unsubscribe",
            data={"csrf_token": token, "channel": "email"},
        )
        page = await client.get(f"/shops/{SHOP}/customers/{customer}")
    after = (await stack.notify_api.get(f"/v1/customers/{customer}/messages")).json()
    profile = (await stack.notify_api.get(f"/v1/customers/{customer}")).json()
    assert [r.status_code for r in resent] == [303, 303]
    assert len(after["items"]) == 2  # the welcome and one resend
    assert unsubscribed.status_code == 303
    assert profile["unsubscribed"]["email_at"] is not None
    assert "unsubscribed on" in page.text


async def test_read_only_staff_see_no_action_and_may_take_none(stack: Stack) -> None:
    customer = await stack.sign_up("Lý Thường Kiệt")
    await stack.earn.grant(customer, 100)
    user = await stack.console.make_user({SHOP: Role.READ_ONLY})
    base = f"/shops/{SHOP}/customers/{customer}"
    async with stack.console.client() as client:
        await signed_in(client, user)
        page = await client.get(base)
        token = csrf_of(page.text)
        answers = [
            await client.post(
                f"{base}/adjustments",
                data={"csrf_token": token, "idempotency_key": "k1", "points": "5", "reason": "r"},
            ),
            await client.post(
                f"{base}/manual-tier",
                data={"csrf_token": token, "tier": "gold", "ends_on": "2099-01-01", "reason": "r"},
            ),
            await client.post(
                f"{base}/messages/1/resend", data={"csrf_token": token, "idempotency_key": "k2"}
            ),
            await client.post(
                f"{base}/unsubscribe", data={"csrf_token": token, "channel": "email"}
            ),
        ]
    assert page.status_code == 200
    assert "idempotency_key" not in page.text
    assert [a.status_code for a in answers] == [403, 403, 403, 403]
    assert await stack.earn.balance(customer) == 100

"""The console reaches the real shops service's API with a platform key and X-Shop-Id:
the shop's settings on its home page, its versions, refusals as problem documents, and a
service that does not answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from console_support import CONSOLE_URLS, ConsoleService, console_service, server_timing, signed_in
from infrastructure import Endpoints
from shops_support import ShopsService, shops_settings
from support import running, unique

from services.console.adapters.upstream import (
    ShopApi,
    Upstream,
    UpstreamProblem,
    UpstreamUnavailable,
)
from services.console.domain.roles import Role
from services.shops.bootstrap import bootstrap as shops_bootstrap


@dataclass(frozen=True)
class Stack:
    shops: ShopsService
    console: ConsoleService
    upstream: Upstream
    shop_id: str


@pytest.fixture(scope="module")
async def stack(infrastructure: Endpoints) -> AsyncIterator[Stack]:
    app, runtime = shops_bootstrap(shops_settings(infrastructure))
    transport = httpx.ASGITransport(app=app)
    async with (
        running(app, runtime),
        httpx.AsyncClient(transport=transport, base_url="http://shops") as api,
    ):
        shops = ShopsService(runtime, api, "")
        shops = ShopsService(runtime, api, await shops.new_key(None, ["platform"]))
        shop_id = unique("vn")
        await shops.new_shop(shop_id, "vn-fashion")
        upstream = Upstream(
            CONSOLE_URLS, api_key=shops.platform_key, timeout_s=2, transports={"shops": transport}
        )
        async with console_service(infrastructure, upstream=upstream) as console:
            yield Stack(shops, console, upstream, shop_id)


async def test_the_home_page_shows_the_shop_as_the_shops_service_knows_it(stack: Stack) -> None:
    owner = await stack.console.make_user({stack.shop_id: Role.OWNER}, locale="en")
    async with stack.console.client() as client:
        await signed_in(client, owner)
        home = await client.get(f"/shops/{stack.shop_id}/")
    assert home.status_code == 200
    assert "VND" in home.text
    assert "Asia/Ho_Chi_Minh" in home.text
    assert "shops service is unavailable" not in home.text
    # No analytics behind this console: the figures' panel says so, the page stands.
    assert "Analytics is unavailable" in home.text
    assert "shops" in server_timing(home.headers["server-timing"])


async def test_the_shops_versions_and_documents_are_read_with_the_platform_key(
    stack: Stack,
) -> None:
    api = ShopApi(stack.shop_id, "u_test", stack.upstream)
    versions = await api.versions("earn")
    first = await api.version("earn", 1)
    assert [v["version"] for v in versions] == [1]
    assert "[currencies.VND]" in first["toml"]


async def test_an_invalid_draft_is_refused_with_the_setting_at_fault(stack: Stack) -> None:
    api = ShopApi(stack.shop_id, "u_test", stack.upstream)
    with pytest.raises(UpstreamProblem) as refused:
        await api.validate("earn", "[currencies.VND]\nper_amount = -5\npoints = 1\n")
    assert refused.value.status == 422
    assert any("per_amount" in e.get("location", "") for e in refused.value.errors)


async def test_a_shop_that_does_not_exist_is_a_404_problem(stack: Stack) -> None:
    api = ShopApi(unique("nowhere"), "u_test", stack.upstream)
    with pytest.raises(UpstreamProblem) as refused:
        await api.shop()
    assert refused.value.status == 404


async def test_a_service_that_does_not_answer_is_unavailable_and_the_page_says_so(
    stack: Stack,
) -> None:
    # Nothing listens on port 9 (discard) of this machine: the connection is refused.
    closed = Upstream({"shops": "http://127.0.0.1:9"}, api_key="lk_x", timeout_s=1)
    try:
        with pytest.raises(UpstreamUnavailable):
            await ShopApi(stack.shop_id, "u_test", closed).shop()
    finally:
        await closed.aclose()
    operator = await stack.console.make_user(operator=True, locale="en")
    async with stack.console.client() as client:
        await signed_in(client, operator)
        # A shop the shops service does not know: the home page still answers.
        page = await client.get(f"/shops/{unique('nowhere')}/")
    assert page.status_code == 200
    assert "The shops service is unavailable" in page.text


async def test_the_widget_theme_is_public_and_names_the_shops_currency_and_locale(
    stack: Stack,
) -> None:
    async with stack.console.client() as storefront:
        theme = await storefront.get(f"/widget/v1/shops/{stack.shop_id}/theme")
        unknown = await storefront.get(f"/widget/v1/shops/{unique('nowhere')}/theme")
    assert theme.status_code == 200
    assert theme.json()["shop_id"] == stack.shop_id
    assert (theme.json()["currency"], theme.json()["locale"]) == ("VND", "vi-VN")
    assert list(server_timing(theme.headers["server-timing"])) == ["shops"]
    assert unknown.status_code == 404

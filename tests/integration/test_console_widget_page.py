"""The Widget page: an owner allows origins, makes a secret shown once and revokes it; the
snippet and the CSP lines name this console; other roles may not see it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from console_support import ConsoleService, console_service, csrf_of, signed_in
from infrastructure import Endpoints
from support import unique

from services.console.adapters import widget_settings
from services.console.domain.roles import Role

PUBLIC = "https://loyalty.example"


@pytest.fixture(scope="module")
async def console(infrastructure: Endpoints) -> AsyncIterator[ConsoleService]:
    async with console_service(infrastructure, console_public_url=PUBLIC) as service:
        yield service


async def test_an_owner_allows_an_origin_and_a_wildcard_is_refused_beside_the_field(
    console: ConsoleService,
) -> None:
    shop = unique("shop")
    owner = await console.make_user({shop: Role.OWNER}, locale="en")
    async with console.client() as client:
        await signed_in(client, owner)
        page = await client.get(f"/shops/{shop}/widget")
        token = csrf_of(page.text)
        added = await client.post(
            f"/shops/{shop}/widget/origins",
            data={"origin": "https://Storefront.example/", "csrf_token": token},
        )
        wild = await client.post(
            f"/shops/{shop}/widget/origins",
            data={"origin": "https://*.example", "csrf_token": token},
        )
        after = await client.get(f"/shops/{shop}/widget")
    assert page.status_code == 200
    assert f'src="{PUBLIC}/widget/v1/loyalty-widget.js"' in page.text.replace("&#34;", '"')
    assert f"script-src {PUBLIC}" in page.text
    assert f"connect-src {PUBLIC}" in page.text
    assert added.status_code == 303
    assert wild.status_code == 422
    assert 'aria-invalid="true"' in wild.text
    assert "<code>https://storefront.example</code>" in after.text
    async with console.pool.acquire() as conn:
        assert await widget_settings.allowed_origins(conn, shop) == {"https://storefront.example"}


async def test_a_new_secret_is_shown_once_and_revoking_it_stops_it(
    console: ConsoleService,
) -> None:
    shop = unique("shop")
    owner = await console.make_user({shop: Role.OWNER}, locale="vi")
    async with console.client() as client:
        await signed_in(client, owner)
        token = csrf_of((await client.get(f"/shops/{shop}/widget")).text)
        made = await client.post(f"/shops/{shop}/widget/secrets", data={"csrf_token": token})
        found = re.search(r'<code id="new-secret">(lws_[A-Za-z0-9_-]{43})</code>', made.text)
        assert found is not None, made.text
        later = await client.get(f"/shops/{shop}/widget")
        async with console.pool.acquire() as conn:
            (kid,) = await widget_settings.active_secrets(conn, shop)
        revoked = await client.post(
            f"/shops/{shop}/widget/secrets/{kid}/revoke", data={"csrf_token": token}
        )
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"
    assert found[1] not in later.text
    assert kid in later.text
    assert revoked.status_code == 303
    async with console.pool.acquire() as conn:
        assert await widget_settings.active_secrets(conn, shop) == {}


@pytest.mark.parametrize("role", [Role.MARKETER, Role.SUPPORT, Role.READ_ONLY])
async def test_only_owners_reach_the_widget_page(console: ConsoleService, role: Role) -> None:
    shop = unique("shop")
    staff = await console.make_user({shop: role}, locale="en")
    async with console.client() as client:
        await signed_in(client, staff)
        page = await client.get(f"/shops/{shop}/widget")
        home = await client.get(f"/shops/{shop}/")
    assert page.status_code == 403
    assert f'href="/shops/{shop}/widget"' not in home.text

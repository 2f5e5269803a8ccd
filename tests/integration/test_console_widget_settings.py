"""The widget's settings: a secret made on the command line signs tokens the console accepts,
and only the origins a shop allowed may call its widget API from a browser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import jwt
import pytest
from console_support import ConsoleService, console_service
from infrastructure import Endpoints
from support import loyalty_command, unique

from services.console import widget
from services.console.adapters import widget_settings
from services.console.domain.widget_tokens import AUDIENCE, TokenInvalid, verify

SECRET_LINE = re.compile(r"^shop (\S+): widget secret (\S+)\nsecret \(shown once\): (\S+)$", re.M)
STOREFRONT = "https://storefront.example"


@pytest.fixture(scope="module")
async def console(infrastructure: Endpoints) -> AsyncIterator[ConsoleService]:
    async with console_service(infrastructure) as service:
        yield service


def command_env(infrastructure: Endpoints) -> dict[str, str]:
    return {
        "LOYALTY_DATABASE_URL": infrastructure.database_url,
        "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap,
    }


async def test_widget_secret_prints_a_secret_once_whose_tokens_the_console_accepts(
    console: ConsoleService, infrastructure: Endpoints
) -> None:
    shop = unique("shop")
    made = loyalty_command(
        "console",
        "widget-secret",
        "--shop",
        shop,
        "--allow-origin",
        "https://Storefront.example/",
        env=command_env(infrastructure),
    )
    found = SECRET_LINE.search(made.stdout)
    assert made.returncode == 0, made.stderr
    assert found is not None, made.stdout
    assert found[1] == shop
    kid, secret = found[2], found[3]
    assert re.fullmatch(r"lws_[A-Za-z0-9_-]{43}", secret)
    assert secret not in made.stderr
    assert f"allowed origins: {STOREFRONT}" in made.stdout

    now = console.clock.now()
    token = jwt.encode(
        {
            "iss": shop,
            "sub": "cust-7",
            "aud": AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=15)).timestamp()),
        },
        secret,
        algorithm="HS256",
        headers={"kid": kid},
    )
    async with console.pool.acquire() as conn:
        active = await widget_settings.active_secrets(conn, shop)
    assert verify(token, shop_id=shop, secrets=active, now=now).customer_id == "cust-7"

    async with console.pool.acquire() as conn:
        assert await widget_settings.revoke_secret(conn, shop_id=shop, kid=kid, now=now)
        active = await widget_settings.active_secrets(conn, shop)
    with pytest.raises(TokenInvalid):
        verify(token, shop_id=shop, secrets=active, now=now)


async def test_a_wildcard_origin_is_refused_and_nothing_is_written(
    console: ConsoleService, infrastructure: Endpoints
) -> None:
    shop = unique("shop")
    refused = loyalty_command(
        "console",
        "widget-secret",
        "--shop",
        shop,
        "--allow-origin",
        "https://*.storefront.example",
        env=command_env(infrastructure),
    )
    assert refused.returncode == 1
    assert "is not an exact origin" in refused.stderr
    async with console.pool.acquire() as conn:
        assert await widget_settings.active_secrets(conn, shop) == {}
        assert await widget_settings.allowed_origins(conn, shop) == frozenset()


async def test_a_preflight_from_an_allowed_origin_is_answered_and_others_are_not(
    console: ConsoleService,
) -> None:
    shop = unique("shop")
    await widget.allow_origins(
        console.pool, shop_id=shop, origins=[STOREFRONT], by="test", now=console.clock.now()
    )
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, idempotency-key, content-type",
    }
    path = f"/widget/v1/shops/{shop}/me/redemptions"
    async with console.client() as client:
        allowed = await client.options(path, headers={"Origin": STOREFRONT, **ask})
        other = await client.options(path, headers={"Origin": "https://evil.example", **ask})
        other_shop = await client.options(
            f"/widget/v1/shops/{unique('shop')}/me", headers={"Origin": STOREFRONT, **ask}
        )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == STOREFRONT
    assert allowed.headers["access-control-allow-methods"] == "GET, POST"
    assert "Idempotency-Key" in allowed.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in allowed.headers
    assert allowed.headers["vary"] == "Origin"
    for refused in (other, other_shop):
        assert refused.status_code == 204
        assert "access-control-allow-origin" not in refused.headers


async def test_a_cross_site_post_to_the_widget_api_is_left_to_cors_not_refused_as_csrf(
    console: ConsoleService,
) -> None:
    shop = unique("shop")
    await widget.allow_origins(
        console.pool, shop_id=shop, origins=[STOREFRONT], by="test", now=console.clock.now()
    )
    cross_site = {"Origin": STOREFRONT, "Sec-Fetch-Site": "cross-site"}
    async with console.client() as client:
        widget_post = await client.post(
            f"/widget/v1/shops/{shop}/me/redemptions", headers=cross_site
        )
        console_post = await client.post("/sign-out", headers=cross_site)
    # Whatever the widget route answers, the CSRF guard of the console does not stand in its way.
    assert widget_post.status_code != 403
    assert widget_post.headers["access-control-allow-origin"] == STOREFRONT
    assert console_post.status_code == 403
    assert "access-control-allow-origin" not in console_post.headers

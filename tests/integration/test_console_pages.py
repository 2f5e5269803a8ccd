"""The console's skeleton served as a service: health, security headers on every page,
the favicon and the style sheet, the sign-in page in both languages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from console_support import ConsoleService, console_service
from infrastructure import Endpoints


@pytest.fixture(scope="module")
async def console(infrastructure: Endpoints) -> AsyncIterator[ConsoleService]:
    async with console_service(infrastructure) as service:
        yield service


async def test_healthz_answers_and_the_schema_is_migrated(console: ConsoleService) -> None:
    async with console.client() as client:
        health = await client.get("/healthz")
    tables = await console.pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'console'"
    )
    assert health.status_code == 200
    assert {"users", "memberships", "sessions", "login_throttle", "invitations", "actions"} <= {
        t["table_name"] for t in tables
    }


async def test_every_page_carries_a_strict_content_security_policy(console: ConsoleService) -> None:
    async with console.client() as client:
        answers = [
            await client.get("/sign-in"),
            await client.get("/no-such-page"),
            await client.get("/static/console.css"),
            await client.get("/favicon.svg"),
        ]
    assert [a.status_code for a in answers] == [200, 404, 200, 200]
    for answer in answers:
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
    assert answers[3].headers["content-type"] == "image/svg+xml"
    assert answers[2].headers["content-type"].startswith("text/css")


async def test_pages_hold_no_inline_script_or_style(console: ConsoleService) -> None:
    async with console.client() as client:
        page = await client.get("/sign-in")
    assert "<script>" not in page.text
    assert "style=" not in page.text
    assert '<link rel="stylesheet" href="/static/console.css">' in page.text


async def test_the_sign_in_page_speaks_vietnamese_first_and_english_on_request(
    console: ConsoleService,
) -> None:
    async with console.client() as client:
        first = await client.get("/sign-in")
        switched = await client.post(
            "/language",
            data={"language": "en", "next": "/sign-in"},
            headers={"Origin": "https://console.test"},
        )
        after = await client.get("/sign-in")
    assert '<html lang="vi">' in first.text
    assert "Đăng nhập" in first.text
    assert switched.status_code == 303
    assert "max-age=" in switched.headers["set-cookie"].lower()
    assert "expires" not in switched.headers["set-cookie"].lower()
    assert '<html lang="en">' in after.text
    assert "Sign in" in after.text

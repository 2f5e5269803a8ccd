"""The console benchmark's load and its reading of the pages: sign-ups with Vietnamese names
that the search finds, each page of the table read or skipped, Server-Timing split by service."""

from __future__ import annotations

import json

import httpx

from bench import signups
from bench.console import PAGES, read_pages, upstream_ms
from bench.console_stack import SHOP, Shop
from services.notify.domain.search import fold_vi
from shared.events.catalog import parse_event


def test_each_customer_signs_up_once_with_a_vietnamese_name() -> None:
    customers = [f"c{n:06d}" for n in range(500)]
    records = signups.generate(customers, SHOP)
    data = [json.loads(value)["data"] for _, value in records]
    assert [key.decode() for key, _ in records] == customers
    assert [d["customer_id"] for d in data] == customers
    assert {d["shop_id"] for d in data} == {SHOP}
    names = [d["name"] for d in data]
    # Written with their diacritics, and the search term of the benchmark finds many of them.
    assert sum(fold_vi(name) != name.lower() for name in names) > 0.9 * len(names)
    found = [name for name in names if "nguyen thi" in fold_vi(name)]
    assert 20 <= len(found) < len(names) / 2
    assert {parse_event("shop.customers", value).type for _, value in records} == {
        "customer.signed_up"
    }


def test_server_timing_gives_each_services_longest_call() -> None:
    header = "shops;dur=12.5, earn;dur=3.0, shops;dur=30.25, tiering;dur=7"
    assert upstream_ms(header) == {"shops": 30.25, "earn": 3.0, "tiering": 7.0}
    assert upstream_ms("") == {}


async def test_each_page_is_read_with_its_credentials_and_a_missing_one_skipped() -> None:
    session, token = "__Host-console_session=s3ss10n", "w1dg3t"
    seen: dict[str, set[str]] = {}

    def console(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/sign-in" and request.method == "GET":
            body = '<input type="hidden" name="csrf_token" value="t0k3n">'
            return httpx.Response(200, text=body, headers={"Set-Cookie": "__Host-sign_in=t0k3n"})
        if path == "/sign-in":
            assert b"csrf_token=t0k3n" in request.content
            assert request.headers["cookie"] == "__Host-sign_in=t0k3n"
            return httpx.Response(303, headers={"Set-Cookie": f"{session}; Secure; HttpOnly"})
        seen.setdefault(path, set()).add(
            request.headers.get("authorization") or request.headers["cookie"]
        )
        if "/customers" in path or path.endswith("/operations"):
            return httpx.Response(404)
        return httpx.Response(200, headers={"Server-Timing": "shops;dur=4.0"})

    shop = Shop("http://console", SHOP, "c000001", "a@example.com", "pw", token)
    transport = httpx.MockTransport(console)
    async with httpx.AsyncClient(transport=transport, base_url=shop.console) as client:
        pages, skipped = await read_pages(client, shop, warm_ups=2, requests=5)

    assert skipped == ["search", "customer", "operations"]
    assert list(pages) == [p.name for p in PAGES if p.name not in skipped]
    assert pages["home"]["upstream_median_ms"] == {"shops": 4.0}
    assert pages["home"]["median_ms"] <= pages["home"]["p95_ms"]
    assert seen[f"/widget/v1/shops/{SHOP}/me"] == {f"Bearer {token}"}
    assert seen[f"/shops/{SHOP}/programme"] == {session}
    assert seen[f"/shops/{SHOP}/customers/c000001"] == {session}

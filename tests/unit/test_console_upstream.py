"""ShopApi over a fake transport: what it sends (the platform key, the shop, who acts) and how
answers become results, refusals (problem documents) or unavailability."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from services.console.adapters.upstream import (
    ShopApi,
    Upstream,
    UpstreamProblem,
    UpstreamUnavailable,
)

URLS = {name: f"http://{name}" for name in ("earn", "tiering", "notify", "analytics", "shops")}


def shop_api(handler: httpx.MockTransport, *, key: str | None = "lk_platform") -> ShopApi:
    transports = dict.fromkeys(URLS, handler)
    upstream = Upstream(URLS, api_key=key, timeout_s=1, transports=transports)
    return ShopApi("vn-fashion", "u_abc", upstream)


async def test_every_call_carries_the_platform_key_the_shop_and_the_acting_user() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"customer_id": "c-1", "balance": 120})

    api = shop_api(httpx.MockTransport(answer))
    balance = await api.balance("c-1")
    assert balance["balance"] == 120
    request = seen[0]
    assert str(request.url) == "http://earn/v1/customers/c-1/balance"
    assert request.headers["X-API-Key"] == "lk_platform"
    assert request.headers["X-Shop-Id"] == "vn-fashion"
    assert request.headers["X-On-Behalf-Of"] == "console:u_abc"
    assert [service for service, _ in api.timings] == ["earn"]


async def test_writes_send_their_idempotency_key_and_body() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"entry_id": 7})

    api = shop_api(httpx.MockTransport(answer))
    await api.adjust("c-1", -50, "goodwill", False, "key-1")
    await api.redeem("c-1", "voucher-50k", "VND", "key-2")
    await api.manual_tier("c-1", "gold", datetime(2027, 1, 31, tzinfo=UTC), "VIP")
    adjust, redeem, manual = seen
    assert (adjust.method, adjust.url.path) == ("POST", "/v1/admin/customers/c-1/adjustments")
    assert adjust.headers["Idempotency-Key"] == "key-1"
    assert json.loads(adjust.content) == {"points": -50, "reason": "goodwill", "force": False}
    assert redeem.url.path == "/v1/customers/c-1/redemptions"
    assert json.loads(redeem.content) == {"reward": "voucher-50k", "currency": "VND"}
    assert (manual.method, manual.url.host) == ("PUT", "tiering")
    assert json.loads(manual.content)["ends_at"] == "2027-01-31T00:00:00+00:00"


async def test_a_problem_document_becomes_a_refusal_with_its_errors() -> None:
    problem = {
        "title": "Unprocessable Content",
        "status": 422,
        "code": "invalid_programme",
        "errors": [{"location": "earn.currencies.VND.per_amount", "message": "must be > 0"}],
    }
    api = shop_api(httpx.MockTransport(lambda _r: httpx.Response(422, json=problem)))
    with pytest.raises(UpstreamProblem) as refused:
        await api.validate("earn", "[currencies.VND]\nper_amount = 0\n")
    assert refused.value.status == 422
    assert refused.value.code == "invalid_programme"
    assert refused.value.errors[0]["location"] == "earn.currencies.VND.per_amount"


async def test_a_refusal_without_a_problem_document_still_has_its_status() -> None:
    api = shop_api(httpx.MockTransport(lambda _r: httpx.Response(404, text="no")))
    with pytest.raises(UpstreamProblem) as refused:
        await api.shop()
    assert (refused.value.status, refused.value.errors) == (404, [])


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_makes_the_service_unavailable(status: int) -> None:
    api = shop_api(httpx.MockTransport(lambda _r: httpx.Response(status)))
    with pytest.raises(UpstreamUnavailable, match=str(status)):
        await api.tier("c-1")


async def test_a_timeout_makes_the_service_unavailable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    api = shop_api(httpx.MockTransport(slow))
    with pytest.raises(UpstreamUnavailable, match="ReadTimeout"):
        await api.overview()
    assert [service for service, _ in api.timings] == ["analytics"]


async def test_without_a_platform_key_nothing_is_sent() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    api = shop_api(httpx.MockTransport(answer), key=None)
    with pytest.raises(UpstreamUnavailable, match="LOYALTY_CONSOLE_API_KEY"):
        await api.shop()
    assert seen == []


@pytest.mark.parametrize(
    "body",
    [
        {"items": [{"name": "welcome", "triggers": ["customer.signed_up"]}]},
        [{"name": "welcome", "triggers": ["customer.signed_up"]}],
    ],
)
async def test_notifys_templates_are_read_from_its_items_or_a_bare_list(body: object) -> None:
    api = shop_api(httpx.MockTransport(lambda _: httpx.Response(200, json=body)))
    assert await api.templates() == [{"name": "welcome", "triggers": ["customer.signed_up"]}]

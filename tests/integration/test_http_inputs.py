"""No input gets a 500 from any route of the earn, tiering and analytics HTTP APIs: a NUL in
any text (path, query or body) and a time out of range are 4xx problem documents."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from earn_api_support import ADMIN, EarnApi, earn_api, key
from infrastructure import Endpoints
from support import unique
from tiering_tools import ADMIN_API_KEY, TieringService

NUL = "x\x00y"
TOO_LATE = {"date": "9999-12-31", "date-time": "9999-12-31T23:59:59Z"}
TOO_EARLY = {"date": "0001-01-01", "date-time": "0001-01-01T00:00:00Z"}

# One valid request per route: (path parameters, query, body). The test fails on a route that
# is not here, so that a new route is checked as well.
CUSTOMER = {"customer_id": "c-inputs"}
EARN_ROUTES: dict[str, tuple[dict[str, str], dict[str, Any], Any]] = {
    "GET /v1/customers/{customer_id}/balance": (CUSTOMER, {}, None),
    "GET /v1/customers/{customer_id}/ledger": (CUSTOMER, {"cursor": "1"}, None),
    "GET /v1/rewards": ({}, {}, None),
    "POST /v1/customers/{customer_id}/redemptions": (CUSTOMER, {}, {"reward": "free-shipping"}),
    "GET /v1/redemptions/{redemption_id}": ({"redemption_id": "r-1"}, {}, None),
    "POST /v1/redemptions/{redemption_id}/cancel": (
        {"redemption_id": "r-1"},
        {},
        {"reason": "changed their mind"},
    ),
    "POST /v1/customers/{customer_id}/store-credit/spend": (
        CUSTOMER,
        {},
        {"currency": "VND", "amount": "1000", "order_id": "o-1"},
    ),
    "GET /v1/store-credit/spends/{spend_id}": ({"spend_id": "s-1"}, {}, None),
    "POST /v1/store-credit/spends/{spend_id}/cancel": ({"spend_id": "s-1"}, {}, {"reason": "r"}),
    "POST /v1/admin/customers/{customer_id}/adjustments": (
        CUSTOMER,
        {},
        {"points": 5, "reason": "goodwill"},
    ),
    "POST /v1/admin/bulk-grants": (
        {},
        {},
        {"batch_id": "b-1", "reason": "launch", "grants": [{"customer_id": "c-1", "points": 5}]},
    ),
}
TIERING_ROUTES: dict[str, tuple[dict[str, str], dict[str, Any], Any]] = {
    "GET /v1/customers/{customer_id}/tier": (CUSTOMER, {}, None),
    "GET /v1/customers/{customer_id}/progress": (CUSTOMER, {}, None),
    "GET /v1/customers/{customer_id}/tier-history": (CUSTOMER, {}, None),
    "PUT /v1/customers/{customer_id}/manual-tier": (
        CUSTOMER,
        {},
        {
            "tier": "gold",
            "ends_at": "2099-01-01T00:00:00Z",
            "starts_at": "2098-01-01T00:00:00Z",
            "reason": "VIP guest",
        },
    ),
}
REPORT: tuple[dict[str, Any], dict[str, Any], None] = (
    {},
    {"from": "2025-01-01", "to": "2025-02-01", "shop": "s", "tier": "gold"},
    None,
)
ANALYTICS_ROUTES = {
    "GET /v1/overview": (
        {},
        {"shop": "s", "time_zone": "Asia/Ho_Chi_Minh", "currency": "VND"},
        None,
    ),
    "GET /v1/report": REPORT,
    "GET /v1/report.html": REPORT,
}


@pytest.fixture(scope="module")
async def earn(infrastructure: Endpoints) -> AsyncIterator[EarnApi]:
    async with earn_api(infrastructure) as service:
        yield service


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def kinds(spec: dict[str, Any], schema: dict[str, Any]) -> Iterator[str]:
    """'text', 'date' or 'date-time' for a string schema, or through anyOf."""
    schema = resolve(spec, schema)
    for option in schema.get("anyOf", []):
        yield from kinds(spec, option)
    if schema.get("type") == "string":
        kind = schema.get("format")
        yield kind if isinstance(kind, str) and kind in TOO_LATE else "text"


def body_fields(spec: dict[str, Any], schema: dict[str, Any]) -> Iterator[tuple[list[Any], str]]:
    """(path into the body, kind) of every text and time field, lists through their first item."""
    schema = resolve(spec, schema)
    for option in schema.get("anyOf", []):
        yield from body_fields(spec, option)
    for name, field in schema.get("properties", {}).items():
        for kind in kinds(spec, field):
            yield [name], kind
        for path, kind in body_fields(spec, field):
            yield [name, *path], kind
    if schema.get("type") == "array":
        for path, kind in body_fields(spec, schema["items"]):
            yield [0, *path], kind


def bad_value(kind: str, late: bool) -> str:
    if kind == "text":
        return NUL
    return (TOO_LATE if late else TOO_EARLY)[kind]


def bad_requests(
    spec: dict[str, Any], routes: dict[str, tuple[dict[str, str], dict[str, Any], Any]]
) -> Iterator[tuple[str, str, dict[str, Any], Any]]:
    """(method, url, query, body) with one text or time of a valid request made bad."""
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            route = f"{method.upper()} {path}"
            assert route in routes, f"{route} has no valid request in this test"
            params, query, body = routes[route]
            for late in (True, False):
                for parameter in operation.get("parameters", []):
                    name, where = parameter["name"], parameter["in"]
                    for kind in kinds(spec, parameter["schema"]):
                        value = bad_value(kind, late)
                        if where == "path":
                            url = path.format(**{**params, name: quote(value, safe="")})
                            yield method, url, query, body
                        elif where == "query":
                            yield method, path.format(**params), {**query, name: value}, body
                content = operation.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    for field, kind in body_fields(spec, content["application/json"]["schema"]):
                        changed = copy.deepcopy(body)
                        target = changed
                        for step in field[:-1]:
                            target = target[step]
                        if isinstance(target, dict) and field[-1] not in target and late:
                            continue  # an optional field the valid request leaves out
                        target[field[-1]] = bad_value(kind, late)
                        yield method, path.format(**params), query, changed


async def assert_no_500(
    client: httpx.AsyncClient,
    routes: dict[str, tuple[dict[str, str], dict[str, Any], Any]],
    headers: dict[str, str],
) -> int:
    spec = (await client.get("/openapi.json")).json()
    sent = 0
    for method, url, query, body in bad_requests(spec, routes):
        response = await client.request(
            method, url, params=query, json=body, headers={**headers, "Idempotency-Key": key()}
        )
        sent += 1
        where = f"{method} {url} {query!r} {body!r}"
        assert 400 <= response.status_code < 500, f"{where}: {response.status_code}"
        assert response.headers["content-type"] == "application/problem+json", where
    return sent


async def test_no_earn_route_answers_500_to_a_nul_or_a_time_out_of_range(earn: EarnApi) -> None:
    await earn.grant(CUSTOMER["customer_id"], 1000)
    assert await assert_no_500(earn.client, EARN_ROUTES, ADMIN) > 20


async def test_no_tiering_route_answers_500_to_a_nul_or_a_time_out_of_range(
    tiering: TieringService,
) -> None:
    headers = {"X-API-Key": ADMIN_API_KEY}
    assert await assert_no_500(tiering.api, TIERING_ROUTES, headers) > 10


async def test_no_analytics_route_answers_500_to_a_nul_or_a_date_out_of_range(
    analytics: httpx.AsyncClient,
) -> None:
    assert await assert_no_500(analytics, ANALYTICS_ROUTES, {}) > 10


def refused_field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["errors"][0]["location"])


async def test_a_nul_in_an_adjustment_reason_is_refused(earn: EarnApi) -> None:
    customer = unique("c")
    response = await earn.client.post(
        f"/v1/admin/customers/{customer}/adjustments",
        json={"points": 5, "reason": NUL},
        headers={**ADMIN, "Idempotency-Key": key()},
    )
    assert refused_field(response) == "body.reason"
    assert "control characters" in response.json()["errors"][0]["message"]


async def test_malformed_bulk_grants_are_refused(earn: EarnApi) -> None:
    grant = {"customer_id": unique("c"), "points": 5}
    for body in (
        {"batch_id": unique("b"), "reason": NUL, "grants": [grant]},
        {"batch_id": unique("b"), "reason": "r", "grants": [grant, 5]},
        {"batch_id": unique("b"), "reason": "r", "grants": [{**grant, "customer_id": NUL}]},
    ):
        response = await earn.client.post("/v1/admin/bulk-grants", json=body, headers=ADMIN)
        assert refused_field(response).startswith(("body.reason", "body.grants")), body
    not_json = await earn.client.post(
        "/v1/admin/bulk-grants", content=b"{not json", headers={**ADMIN, "content-type": "x"}
    )
    assert refused_field(not_json) == "body"


async def test_a_manual_tier_with_a_nul_or_until_year_9999_is_refused(
    tiering: TieringService,
) -> None:
    url = f"/v1/customers/{unique('c')}/manual-tier"
    good = {"tier": "gold", "ends_at": "2099-01-01T00:00:00Z", "reason": "VIP guest"}
    headers = {"X-API-Key": ADMIN_API_KEY}

    nul = await tiering.api.put(url, json={**good, "reason": NUL}, headers=headers)
    forever = await tiering.api.put(
        url, json={**good, "ends_at": "9999-12-31T23:59:59Z"}, headers=headers
    )

    assert refused_field(nul) == "body.reason"
    assert refused_field(forever) == "body.ends_at"
    assert "3000-01-01" in forever.json()["errors"][0]["message"]


async def test_a_report_for_a_shop_with_a_nul_is_refused(analytics: httpx.AsyncClient) -> None:
    query = {"from": "2025-01-01", "to": "2025-02-01", "shop": NUL}
    assert refused_field(await analytics.get("/v1/report", params=query)) == "query.shop"
    assert refused_field(await analytics.get("/v1/report.html", params=query)) == "query.shop"

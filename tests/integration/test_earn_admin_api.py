"""Operators' adjustments and bulk grants over HTTP: a known key is required, and a retried
request never credits twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from earn_api_support import ADMIN, EarnApi, earn_api, key, programme
from infrastructure import Endpoints
from support import TopicTail, unique

from services.earn.http import build_api
from services.earn.programme_book import ProgrammeBook
from shared.shop_directory import ShopDirectory


@pytest.fixture(scope="module")
async def api(infrastructure: Endpoints) -> AsyncIterator[EarnApi]:
    async with earn_api(infrastructure) as service:
        yield service


async def test_admin_endpoints_need_a_known_key(api: EarnApi) -> None:
    customer = unique("c")
    body = {"points": 10, "reason": "goodwill"}
    grants = {
        "batch_id": unique("b"),
        "reason": "x",
        "grants": [{"customer_id": customer, "points": 1}],
    }
    request = api.client.build_request(
        "POST",
        f"/v1/admin/customers/{customer}/adjustments",
        json=body,
        headers={"Idempotency-Key": key()},
    )
    del request.headers["X-API-Key"]

    missing = await api.client.send(request)
    wrong = await api.client.post(
        "/v1/admin/bulk-grants", json=grants, headers={"X-API-Key": "not-the-key"}
    )

    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert "X-API-Key" in refused.json()["detail"]
    assert (
        await api.db.fetchval("SELECT count(*) FROM earn.ledger WHERE customer_id = $1", customer)
        == 0
    )


async def test_without_a_configured_key_the_admin_key_is_unknown(api: EarnApi) -> None:
    unconfigured = build_api(api.runtime, programmes=ProgrammeBook.fixed(programme()))
    unconfigured.state.shop_directory = ShopDirectory("earn")
    transport = httpx.ASGITransport(app=unconfigured)
    async with httpx.AsyncClient(transport=transport, base_url="http://earn") as client:
        response = await client.post(
            "/v1/admin/bulk-grants",
            json={"batch_id": "b", "reason": "x", "grants": [{"customer_id": "c", "points": 1}]},
            headers=ADMIN,
        )

    assert response.status_code == 401


async def test_an_adjustment_retried_with_its_key_is_recorded_once(
    api: EarnApi, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    headers = {**ADMIN, "Idempotency-Key": key()}
    body = {"points": 40, "reason": "goodwill for a late parcel"}

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points:
        first, *retries = await asyncio.gather(
            *(
                api.client.post(
                    f"/v1/admin/customers/{customer}/adjustments", json=body, headers=headers
                )
                for _ in range(4)
            )
        )
        published = await points.collect(lambda r: r.key == customer.encode(), count=1)
        later = await points.settle(lambda r: r.key == customer.encode(), seconds=1.0)

    assert first.status_code == 201
    assert all(r.status_code == 201 and r.json() == first.json() for r in retries)
    assert first.json()["balance_after"] == 40
    assert await api.balance(customer) == 40
    event = json.loads(published[0].value)
    assert (event["type"], event["data"]["delta"], event["data"]["reason"]) == (
        "points.adjusted",
        40,
        "goodwill for a late parcel",
    )
    assert later == []


async def test_a_replay_sends_the_stored_body_byte_for_byte(api: EarnApi) -> None:
    customer = unique("c")
    await api.grant(customer, 500)
    redeem = {"Idempotency-Key": key()}
    too_much = {**ADMIN, "Idempotency-Key": key()}
    path = f"/v1/customers/{customer}/redemptions"
    deduct = f"/v1/admin/customers/{customer}/adjustments"

    first = await api.client.post(path, json={"reward": "voucher-50k"}, headers=redeem)
    again = await api.client.post(path, json={"reward": "voucher-50k"}, headers=redeem)
    refused = await api.client.post(deduct, json={"points": -9999, "reason": "x"}, headers=too_much)
    refused_again = await api.client.post(
        deduct, json={"points": -9999, "reason": "x"}, headers=too_much
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert list(again.json()) == list(first.json())
    assert (refused.status_code, refused_again.status_code) == (409, 409)
    assert refused_again.content == refused.content
    assert refused_again.headers["content-type"] == "application/problem+json"


async def test_a_deduction_below_zero_is_refused_unless_forced(api: EarnApi) -> None:
    customer = unique("c")
    await api.grant(customer, 30)
    path = f"/v1/admin/customers/{customer}/adjustments"

    refused = await api.client.post(
        path, json={"points": -50, "reason": "fraud"}, headers={**ADMIN, "Idempotency-Key": key()}
    )
    within = await api.client.post(
        path, json={"points": -20, "reason": "fix"}, headers={**ADMIN, "Idempotency-Key": key()}
    )
    forced = await api.client.post(
        path,
        json={"points": -50, "reason": "fraud", "force": True},
        headers={**ADMIN, "Idempotency-Key": key()},
    )
    unknown = await api.client.post(
        f"/v1/admin/customers/{unique('nobody')}/adjustments",
        json={"points": -5, "reason": "typo"},
        headers={**ADMIN, "Idempotency-Key": key()},
    )

    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_points"
    assert (within.status_code, within.json()["balance_after"]) == (201, 10)
    assert (forced.status_code, forced.json()["balance_after"]) == (201, -40)
    assert unknown.status_code == 404
    assert await api.balance(customer) == await api.ledger_sum(customer) == -40


async def test_a_bulk_grant_reports_each_customer_and_a_retry_credits_nobody_twice(
    api: EarnApi,
) -> None:
    customers = [unique("c") for _ in range(5)]
    await api.grant(customers[0], 7)
    batch = {
        "batch_id": unique("batch"),
        "reason": "launch bonus",
        "grants": [{"customer_id": c, "points": 10 * (i + 1)} for i, c in enumerate(customers)],
    }

    first = await api.client.post("/v1/admin/bulk-grants", json=batch, headers=ADMIN)
    retried = await asyncio.gather(
        *(api.client.post("/v1/admin/bulk-grants", json=batch, headers=ADMIN) for _ in range(3))
    )
    changed = await api.client.post(
        "/v1/admin/bulk-grants",
        json={**batch, "grants": batch["grants"][:2]},
        headers=ADMIN,
    )

    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["granted"], report["points"]) == (5, 150)
    assert [(r["customer_id"], r["points"], r["status"]) for r in report["results"]] == [
        (c, 10 * (i + 1), "granted") for i, c in enumerate(customers)
    ]
    assert report["results"][0]["balance_after"] == 17
    assert report["results"][0]["entry_id"] == f"grant:{batch['batch_id']}:{customers[0]}"
    assert all(r.status_code == 200 and r.json() == report for r in retried)
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency_key_reused"
    balances = [await api.balance(c) for c in customers]
    assert balances == [17, 20, 30, 40, 50]


async def test_a_bulk_grant_over_the_limit_or_with_a_customer_twice_is_refused_whole(
    api: EarnApi,
) -> None:
    customer = unique("c")
    too_many = {
        "batch_id": unique("batch"),
        "reason": "too many",
        "grants": [{"customer_id": f"{customer}-{i}", "points": 1} for i in range(1001)],
    }
    twice = {
        "batch_id": unique("batch"),
        "reason": "twice",
        "grants": [{"customer_id": customer, "points": 1}, {"customer_id": customer, "points": 2}],
    }

    over = await api.client.post("/v1/admin/bulk-grants", json=too_many, headers=ADMIN)
    repeated = await api.client.post("/v1/admin/bulk-grants", json=twice, headers=ADMIN)

    assert over.status_code == 422
    assert over.json()["errors"][0]["location"] == "body.grants"
    assert repeated.status_code == 422
    assert "granted twice" in repeated.json()["errors"][0]["message"]
    assert (
        await api.db.fetchval(
            "SELECT count(*) FROM earn.ledger WHERE customer_id LIKE $1", f"{customer}%"
        )
        == 0
    )

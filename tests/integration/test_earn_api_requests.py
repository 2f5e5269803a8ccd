"""The earn API answers bad requests with problem documents and changes nothing; the ledger
is read in pages; the OpenAPI document lists every route with its models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from earn_api_support import ADMIN, EarnApi, earn_api, key
from infrastructure import Endpoints
from notify_support import event_of
from support import encoded, eventually, order_paid, unique


@pytest.fixture(scope="module")
async def api(infrastructure: Endpoints) -> AsyncIterator[EarnApi]:
    async with earn_api(infrastructure) as service:
        yield service


def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = dict(response.json())
    assert body["status"] == status
    assert body["title"]
    return body


async def test_bad_redemption_requests_are_answered_with_problems_and_change_nothing(
    api: EarnApi,
) -> None:
    customer = unique("c")
    await api.grant(customer, 1000)
    path = f"/v1/customers/{customer}/redemptions"

    unknown = await api.redeem(customer, {"reward": "no-such-reward"})
    malformed = await api.client.post(
        path, content=b"{not json", headers={"Idempotency-Key": key()}
    )
    wrong_type = await api.redeem(customer, {"reward": "pay-with-points", "steps": "many"})
    extra = await api.redeem(customer, {"reward": "free-shipping", "coupon": "x"})
    no_key = await api.client.post(path, json={"reward": "free-shipping"})
    bad_key = await api.redeem(customer, {"reward": "free-shipping"}, **{"Idempotency-Key": "a b"})
    no_currency = await api.redeem(customer, {"reward": "voucher-any"})
    other_currency = await api.redeem(customer, {"reward": "voucher-50k", "currency": "USD"})
    steps_on_voucher = await api.redeem(customer, {"reward": "voucher-50k", "steps": 2})
    nobody = await api.redeem(unique("nobody"), {"reward": "free-shipping"})

    unknown_body = problem_of(unknown, 422)
    assert unknown_body["errors"][0]["location"] == "body.reward"
    assert "no-such-reward" in unknown_body["errors"][0]["message"]
    assert "free-shipping" in unknown_body["errors"][0]["message"]
    assert problem_of(malformed, 422)["errors"][0]["location"].startswith("body")
    assert problem_of(wrong_type, 422)["errors"][0]["location"] == "body.steps"
    assert problem_of(extra, 422)["errors"][0]["location"] == "body.coupon"
    assert problem_of(no_key, 400)["code"] == "idempotency_key_missing"
    assert problem_of(bad_key, 422)["errors"][0]["location"] == "header.Idempotency-Key"
    assert problem_of(no_currency, 422)["errors"][0]["location"] == "body.currency"
    assert "USD, VND" in problem_of(no_currency, 422)["errors"][0]["message"]
    assert problem_of(other_currency, 422)["errors"][0]["location"] == "body.currency"
    assert problem_of(steps_on_voucher, 422)["errors"][0]["location"] == "body.steps"
    assert problem_of(nobody, 404)["code"] == "unknown_customer"
    assert await api.balance(customer) == 1000
    assert (
        await api.db.fetchval(
            "SELECT count(*) FROM earn.redemptions WHERE customer_id = $1", customer
        )
        == 0
    )


async def test_unknown_customers_and_redemptions_are_not_found(api: EarnApi) -> None:
    nobody = unique("nobody")

    balance = await api.client.get(f"/v1/customers/{nobody}/balance")
    ledger = await api.client.get(f"/v1/customers/{nobody}/ledger")
    redemption = await api.client.get("/v1/redemptions/rdm-000000000000000000000000")
    cancel = await api.client.post("/v1/redemptions/rdm-000000000000000000000000/cancel")
    bad_id = await api.client.get(f"/v1/customers/{'x' * 129}/balance")

    assert problem_of(balance, 404)["code"] == "unknown_customer"
    assert problem_of(ledger, 404)["code"] == "unknown_customer"
    assert problem_of(redemption, 404)["code"] == "unknown_redemption"
    assert problem_of(cancel, 404)["code"] == "unknown_redemption"
    assert problem_of(bad_id, 422)["errors"][0]["location"] == "path.customer_id"


async def test_a_customer_earn_knows_but_never_credited_has_a_balance_of_0(
    api: EarnApi, producer: AIOKafkaProducer
) -> None:
    at = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    tiered, signed_up, small_order = unique("platinum"), unique("signed"), unique("small")
    change = {
        "customer_id": tiered,
        "from_tier": None,
        "to_tier": "platinum",
        "direction": "up",
        "reason": "membership",
        "qualifying_amount": "0",
        "basis": "spend",
        "currency": "VND",
        "effective_at": at.isoformat(),
        "multiplier": "2",
    }
    customer = {
        "customer_id": signed_up,
        "email": "a@mail.example",
        "name": "An",
        "locale": "vi-VN",
        "time_zone": "Asia/Ho_Chi_Minh",
    }
    events = [
        ("loyalty.tiers", event_of("tier.changed", tiered, change, at)),
        ("shop.customers", event_of("customer.signed_up", signed_up, customer, at)),
        ("shop.orders", order_paid(small_order, total="5000", at=at)),  # 0 points
    ]
    for topic, event in events:
        await producer.send_and_wait(topic, encoded(event), key=event.subject.encode())
    known = (tiered, signed_up, small_order)
    await eventually(
        lambda: api.db.fetchval(
            """SELECT (SELECT count(*) FROM earn.customer_tiers WHERE customer_id = $1)
                    + (SELECT count(*) FROM earn.customers WHERE customer_id = $2)
                    + (SELECT count(*) FROM earn.orders WHERE customer_id = $3)""",
            *known,
        ),
        lambda n: n == 3,
    )

    for customer_id in known:
        balance = await api.client.get(f"/v1/customers/{customer_id}/balance")
        ledger = await api.client.get(f"/v1/customers/{customer_id}/ledger")
        assert balance.status_code == 200, balance.text
        assert balance.json()["points"] == {"available": 0, "pending": 0, "lifetime_earned": 0}
        assert balance.json()["store_credit"] == []
        assert ledger.status_code == 200, ledger.text
        assert ledger.json()["items"] == []
    nobody = await api.client.get(f"/v1/customers/{unique('nobody')}/balance")
    assert problem_of(nobody, 404)["code"] == "unknown_customer"


async def test_bad_admin_bodies_name_the_field(api: EarnApi) -> None:
    customer = unique("c")
    path = f"/v1/admin/customers/{customer}/adjustments"

    zero = await api.client.post(
        path, json={"points": 0, "reason": "x"}, headers={**ADMIN, "Idempotency-Key": key()}
    )
    no_reason = await api.client.post(
        path, json={"points": 5}, headers={**ADMIN, "Idempotency-Key": key()}
    )
    no_key = await api.client.post(path, json={"points": 5, "reason": "x"}, headers=ADMIN)

    assert problem_of(zero, 422)["errors"][0]["location"] == "body.points"
    assert problem_of(no_reason, 422)["errors"][0]["location"] == "body.reason"
    assert problem_of(no_key, 400)["code"] == "idempotency_key_missing"
    assert (
        await api.db.fetchval("SELECT count(*) FROM earn.ledger WHERE customer_id = $1", customer)
        == 0
    )


async def test_the_ledger_is_read_newest_first_in_pages_that_add_up_to_the_balance(
    api: EarnApi,
) -> None:
    customer = unique("c")
    for points in range(1, 8):
        await api.grant(customer, points)
    await api.redeem(customer, {"reward": "pay-with-points", "steps": 2, "currency": "VND"})

    pages, cursors, cursor = [], [], None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get(f"/v1/customers/{customer}/ledger", params=params)).json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        cursors.append(cursor)
    bad_cursor = await api.client.get(
        f"/v1/customers/{customer}/ledger", params={"cursor": "bm90LWEtY3Vyc29y"}
    )

    entries = [e for page in pages for e in page]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [e["seq"] for e in entries] == sorted((e["seq"] for e in entries), reverse=True)
    assert [e["delta"] for e in entries] == [-20, 7, 6, 5, 4, 3, 2, 1]
    assert [p[-1]["seq"] for p in pages[:-1]] == [int(c) for c in cursors]
    assert entries[0]["kind"] == "redeemed"
    assert entries[0]["balance_after"] == sum(e["delta"] for e in entries) == 8
    balance = (await api.client.get(f"/v1/customers/{customer}/balance")).json()
    assert balance["points"] == {"available": 8, "pending": 0, "lifetime_earned": 0}
    assert balance["store_credit"] == []
    assert problem_of(bad_cursor, 422)["errors"][0]["location"] == "query.cursor"


async def test_the_openapi_document_lists_every_route_with_its_models(api: EarnApi) -> None:
    document = (await api.client.get("/openapi.json")).json()

    routes = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert routes == {
        ("/v1/customers/{customer_id}/balance", "get"),
        ("/v1/customers/{customer_id}/ledger", "get"),
        ("/v1/rewards", "get"),
        ("/v1/customers/{customer_id}/redemptions", "post"),
        ("/v1/redemptions/{redemption_id}", "get"),
        ("/v1/redemptions/{redemption_id}/cancel", "post"),
        ("/v1/customers/{customer_id}/store-credit/spend", "post"),
        ("/v1/store-credit/spends/{spend_id}", "get"),
        ("/v1/store-credit/spends/{spend_id}/cancel", "post"),
        ("/v1/admin/customers/{customer_id}/adjustments", "post"),
        ("/v1/admin/bulk-grants", "post"),
    }
    redeem = document["paths"]["/v1/customers/{customer_id}/redemptions"]["post"]
    assert redeem["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RedemptionView"
    }
    assert redeem["responses"]["409"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert {"name": "Idempotency-Key", "in": "header"}.items() <= redeem["parameters"][1].items()
    schemas = document["components"]["schemas"]
    for model in ("BalanceView", "LedgerPage", "Catalogue", "RedeemRequest", "BulkGrantReport"):
        assert model in schemas

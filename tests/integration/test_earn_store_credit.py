"""Spending store credit over HTTP on the real database and broker: the credit never goes below
zero, spends are idempotent by key, cancelling gives the credit back once, every entry is an
event. Customers get their credit as cashback on order.paid events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from earn_api_support import ADMIN, EarnApi, earn_api, key
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_cancelled, order_paid, unique

from services.earn.programme import Programme, parse_programme


def cashback_programme() -> Programme:
    """1 point per 10,000 VND and per 1 USD, 10 % cashback in VND and 5 % in USD, available
    at payment."""
    return parse_programme(
        {
            "currencies": {"VND": {"per_amount": 10000}, "USD": {"per_amount": 1}},
            "cashback": {"percent": {"VND": "10", "USD": "5"}},
        },
        source="tests",
    )


@pytest.fixture(scope="module")
async def api(infrastructure: Endpoints) -> AsyncIterator[EarnApi]:
    async with earn_api(infrastructure, with_programme=cashback_programme()) as service:
        yield service


async def pay(
    api: EarnApi, producer: AIOKafkaProducer, customer: str, total: str, currency: str
) -> str:
    """Publish an order.paid and wait for its cashback; the order's id."""
    before = await credit_minor(api, customer, currency)
    event = order_paid(customer, total=total, currency=currency)
    await producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())
    await eventually(lambda: credit_minor(api, customer, currency), lambda c: c != before)
    return str(event.data.order_id)


async def credit_minor(api: EarnApi, customer: str, currency: str) -> int | None:
    value = await api.db.fetchval(
        "SELECT balance_minor FROM earn.credit_accounts WHERE customer_id = $1 AND currency = $2",
        customer,
        currency,
    )
    return None if value is None else int(value)


async def credit_entries_sum(api: EarnApi, customer: str, currency: str) -> int:
    value = await api.db.fetchval(
        "SELECT sum(delta) FROM earn.ledger WHERE customer_id = $1 AND currency = $2"
        " AND balance_kind = 'store_credit'",
        customer,
        currency,
    )
    return int(value)


async def spend(
    api: EarnApi, customer: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await api.client.post(
        f"/v1/customers/{customer}/store-credit/spend",
        json=body,
        headers={"Idempotency-Key": key(), **headers},
    )


async def store_credit(api: EarnApi, customer: str) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/customers/{customer}/balance")
    assert response.status_code == 200, response.text
    return list(response.json()["store_credit"])


async def test_fifty_concurrent_spends_of_credit_covering_ten_let_exactly_ten_through(
    api: EarnApi, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await pay(api, producer, customer, "200.00", "USD")  # 5 %: 10.00 USD
    assert await credit_minor(api, customer, "USD") == 1000

    responses = await asyncio.gather(
        *(spend(api, customer, {"currency": "USD", "amount": "1.00"}) for _ in range(50))
    )

    statuses = [r.status_code for r in responses]
    assert (statuses.count(201), statuses.count(409)) == (10, 40)
    refused = [r for r in responses if r.status_code == 409]
    assert {r.headers["content-type"] for r in refused} == {"application/problem+json"}
    assert {r.json()["code"] for r in refused} == {"insufficient_credit"}
    assert {r.json()["detail"] for r in refused} == {
        "insufficient store credit: the spend is 1.00 USD, 0.00 USD is available"
    }
    spent = [r.json() for r in responses if r.status_code == 201]
    assert len({s["spend_id"] for s in spent}) == 10
    assert sorted(s["balance_after"] for s in spent) == [f"{n}.00" for n in range(10)]
    assert await credit_minor(api, customer, "USD") == 0
    assert await credit_entries_sum(api, customer, "USD") == 0
    kinds = await api.db.fetch(
        "SELECT kind, count(*) AS n, min(balance_after) AS low FROM earn.ledger"
        " WHERE customer_id = $1 AND balance_kind = 'store_credit' GROUP BY kind",
        customer,
    )
    assert {(r["kind"], r["n"]) for r in kinds} == {("earned", 1), ("redeemed", 10)}
    assert min(r["low"] for r in kinds) == 0
    assert await store_credit(api, customer) == [
        {"currency": "USD", "amount": "0.00", "amount_minor": 0, "pending_minor": 0}
    ]


async def test_a_spend_takes_the_credit_publishes_its_entry_and_shows_in_the_balance(
    api: EarnApi, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda r: r.key == customer.encode()  # noqa: E731

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points:
        await pay(api, producer, customer, "500000", "VND")  # 10 %: 50,000 VND; 50 points
        response = await spend(
            api, customer, {"currency": "VND", "amount": "12000", "order_id": "o-checkout-1"}
        )
        published = await points.collect(mine, count=3)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["spend_id"].startswith("csp-")
    assert {k: body[k] for k in ("customer_id", "currency", "amount", "amount_minor")} == {
        "customer_id": customer,
        "currency": "VND",
        "amount": "12000",
        "amount_minor": 12000,
    }
    assert (body["balance_after"], body["balance_after_minor"]) == ("38000", 38000)
    assert (body["status"], body["order_id"], body["restored_entry_id"]) == (
        "spent",
        "o-checkout-1",
        None,
    )
    events = [json.loads(r.value) for r in published]
    credit = [e for e in events if e["data"]["balance_kind"] == "store_credit"]
    assert [
        (e["type"], e["data"]["delta"], e["data"]["balance_after"], e["data"]["currency"])
        for e in credit
    ] == [("points.earned", 50000, 50000, "VND"), ("points.redeemed", -12000, 38000, "VND")]
    assert credit[1]["data"]["entry_id"] == body["spent_entry_id"]
    assert (credit[1]["data"]["reason"], credit[1]["data"]["order_id"]) == (
        "checkout",
        "o-checkout-1",
    )
    assert [e["data"]["delta"] for e in events if e["data"]["balance_kind"] == "points"] == [50]
    fetched = await api.client.get(f"/v1/store-credit/spends/{body['spend_id']}")
    assert fetched.json() == body
    assert await store_credit(api, customer) == [
        {"currency": "VND", "amount": "38000", "amount_minor": 38000, "pending_minor": 0}
    ]
    balance = (await api.client.get(f"/v1/customers/{customer}/balance")).json()
    assert balance["points"]["available"] == 50
    ledger = (await api.client.get(f"/v1/customers/{customer}/ledger")).json()
    newest = ledger["items"][0]
    assert (newest["entry_id"], newest["kind"], newest["delta"], newest["balance_kind"]) == (
        body["spent_entry_id"],
        "redeemed",
        -12000,
        "store_credit",
    )


async def test_the_same_key_and_amount_replay_the_first_response_and_spend_once(
    api: EarnApi, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await pay(api, producer, customer, "200.00", "USD")
    same = key()

    first = await spend(
        api, customer, {"currency": "USD", "amount": "2.50"}, **{"Idempotency-Key": same}
    )
    again = await spend(
        api, customer, {"amount": "2.500", "currency": "USD"}, **{"Idempotency-Key": same}
    )

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await credit_minor(api, customer, "USD") == 750
    assert await credit_entries_sum(api, customer, "USD") == 750


async def test_concurrent_requests_with_one_key_spend_once_and_all_get_the_same_answer(
    api: EarnApi, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await pay(api, producer, customer, "200.00", "USD")
    same = key()

    responses = await asyncio.gather(
        *(
            spend(api, customer, {"currency": "USD", "amount": "3.00"}, **{"Idempotency-Key": same})
            for _ in range(8)
        )
    )

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["spend_id"] for r in responses}) == 1
    assert sum(1 for r in responses if "idempotent-replayed" not in r.headers) == 1
    assert await credit_minor(api, customer, "USD") == 700


async def test_a_key_reused_for_another_spend_is_a_conflict_and_changes_nothing(
    api: EarnApi, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await pay(api, producer, customer, "200.00", "USD")
    same = key()

    first = await spend(
        api, customer, {"currency": "USD", "amount": "1.00"}, **{"Idempotency-Key": same}
    )
    other_amount = await spend(
        api, customer, {"currency": "USD", "amount": "2.00"}, **{"Idempotency-Key": same}
    )
    other_order = await spend(
        api,
        customer,
        {"currency": "USD", "amount": "1.00", "order_id": "o-2"},
        **{"Idempotency-Key": same},
    )

    assert first.status_code == 201
    for refused in (other_amount, other_order):
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "idempotency_key_reused"
    assert await credit_minor(api, customer, "USD") == 900


async def test_a_refusal_is_replayed_for_its_key_and_a_new_key_tries_again(
    api: EarnApi, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await pay(api, producer, customer, "200.00", "USD")  # 10.00 USD
    same = key()
    body = {"currency": "USD", "amount": "15.00"}

    refused = await spend(api, customer, body, **{"Idempotency-Key": same})
    await pay(api, producer, customer, "100.00", "USD")  # 5.00 USD more
    replayed = await spend(api, customer, body, **{"Idempotency-Key": same})
    fresh = await spend(api, customer, body)

    assert (refused.status_code, replayed.status_code, fresh.status_code) == (409, 409, 201)
    assert refused.json()["detail"] == (
        "insufficient store credit: the spend is 15.00 USD, 10.00 USD is available"
    )
    assert replayed.json() == refused.json()
    assert await credit_minor(api, customer, "USD") == 0


async def test_cancelling_gives_the_credit_back_once(
    api: EarnApi, producer: AIOKafkaProducer, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    credit_events = lambda r: (  # noqa: E731
        r.key == customer.encode() and json.loads(r.value)["data"]["balance_kind"] == "store_credit"
    )

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points:
        await pay(api, producer, customer, "200.00", "USD")
        spent = (await spend(api, customer, {"currency": "USD", "amount": "4.00"})).json()
        path = f"/v1/store-credit/spends/{spent['spend_id']}/cancel"
        cancels = await asyncio.gather(
            *(api.client.post(path, json={"reason": "checkout abandoned"}) for _ in range(5))
        )
        published = await points.collect(credit_events, count=3)
        later = await points.settle(credit_events, seconds=1.0)

    assert {c.status_code for c in cancels} == {200}
    body = cancels[0].json()
    assert all(c.json() == body for c in cancels)
    assert (body["status"], body["cancel_reason"]) == ("cancelled", "checkout abandoned")
    assert (body["amount"], body["balance_after"]) == ("4.00", "6.00")
    assert await credit_minor(api, customer, "USD") == 1000
    assert await credit_entries_sum(api, customer, "USD") == 1000
    restored = await api.db.fetch(
        "SELECT entry_id, delta, balance_after FROM earn.ledger"
        " WHERE customer_id = $1 AND kind = 'restored'",
        customer,
    )
    assert [tuple(r) for r in restored] == [(body["restored_entry_id"], 400, 1000)]
    events = [json.loads(r.value) for r in published]
    assert [
        (e["type"], e["data"]["delta"], e["data"]["balance_after"], e["data"]["currency"])
        for e in events
    ] == [
        ("points.earned", 1000, 1000, "USD"),
        ("points.redeemed", -400, 600, "USD"),
        ("points.redeemed", 400, 1000, "USD"),
    ]
    assert events[2]["data"]["entry_id"] == body["restored_entry_id"]
    assert later == []
    fetched = await api.client.get(f"/v1/store-credit/spends/{spent['spend_id']}")
    assert fetched.json() == body


async def test_a_negative_credit_blocks_spends_until_it_is_positive_again(
    api: EarnApi, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    order_id = await pay(api, producer, customer, "200.00", "USD")  # 10.00 USD
    assert (await spend(api, customer, {"currency": "USD", "amount": "8.00"})).status_code == 201

    cancelled = order_cancelled(customer, order_id)
    await producer.send_and_wait("shop.orders", encoded(cancelled), key=customer.encode())
    await eventually(lambda: credit_minor(api, customer, "USD"), lambda c: c == -800)
    blocked = await spend(api, customer, {"currency": "USD", "amount": "0.01"})
    shown = await store_credit(api, customer)
    await pay(api, producer, customer, "400.00", "USD")  # 20.00 USD: 12.00 left
    unblocked = await spend(api, customer, {"currency": "USD", "amount": "12.00"})

    assert blocked.status_code == 409
    assert blocked.json()["code"] == "negative_credit"
    assert "-8.00 USD" in blocked.json()["detail"]
    assert shown == [
        {"currency": "USD", "amount": "-8.00", "amount_minor": -800, "pending_minor": 0}
    ]
    assert unblocked.status_code == 201, unblocked.text
    assert unblocked.json()["balance_after"] == "0.00"
    assert (
        await credit_minor(api, customer, "USD")
        == await credit_entries_sum(api, customer, "USD")
        == 0
    )


async def test_bad_requests_are_problems_naming_the_field_and_change_nothing(
    api: EarnApi, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    await pay(api, producer, customer, "200.00", "USD")
    points_only = unique("c")
    await api.client.post(
        f"/v1/admin/customers/{points_only}/adjustments",
        json={"points": 10, "reason": "test credit"},
        headers={**ADMIN, "Idempotency-Key": key()},
    )

    cases: dict[str, tuple[str, dict[str, Any], str]] = {
        "unknown currency": (customer, {"currency": "XYZ", "amount": "1.00"}, "body.currency"),
        "currency not held": (customer, {"currency": "EUR", "amount": "1.00"}, "body.currency"),
        "no credit at all": (points_only, {"currency": "USD", "amount": "1.00"}, "body.currency"),
        "finer than cents": (customer, {"currency": "USD", "amount": "1.005"}, "body.amount"),
        "zero": (customer, {"currency": "USD", "amount": "0.00"}, "body.amount"),
        "negative": (customer, {"currency": "USD", "amount": "-1.00"}, "body.amount"),
        "a JSON number": (customer, {"currency": "USD", "amount": 1}, "body.amount"),
    }
    answers = {name: await spend(api, who, body) for name, (who, body, _) in cases.items()}
    unknown = await spend(api, unique("c"), {"currency": "USD", "amount": "1.00"})
    no_key = await api.client.post(
        f"/v1/customers/{customer}/store-credit/spend", json={"currency": "USD", "amount": "1"}
    )
    no_spend = await api.client.get("/v1/store-credit/spends/csp-none")
    no_cancel = await api.client.post("/v1/store-credit/spends/csp-none/cancel")

    for name, (_, _, location) in cases.items():
        answer = answers[name]
        assert answer.status_code == 422, name
        assert answer.headers["content-type"] == "application/problem+json", name
        assert [e["location"] for e in answer.json()["errors"]] == [location], name
    assert "held in USD" in answers["currency not held"].json()["errors"][0]["message"]
    assert "USD allows (2)" in answers["finer than cents"].json()["errors"][0]["message"]
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_customer")
    assert (no_key.status_code, no_key.json()["code"]) == (400, "idempotency_key_missing")
    assert (no_spend.status_code, no_spend.json()["code"]) == (404, "unknown_spend")
    assert (no_cancel.status_code, no_cancel.json()["code"]) == (404, "unknown_spend")
    assert await credit_minor(api, customer, "USD") == 1000
    assert (
        await api.db.fetchval(
            "SELECT count(*) FROM earn.credit_spends WHERE customer_id = ANY($1::text[])",
            [customer, points_only],
        )
        == 0
    )

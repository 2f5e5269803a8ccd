"""Redeeming rewards over HTTP on the real database and broker: balances never go below zero,
requests are idempotent by key, cancellations give points back once, every entry is an event."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from earn_api_support import ADMIN, EarnApi, earn_api, key
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_paid, unique

VOUCHER = re.compile(r"^[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){3}$")


@pytest.fixture(scope="module")
async def api(infrastructure: Endpoints) -> AsyncIterator[EarnApi]:
    async with earn_api(infrastructure) as service:
        yield service


async def test_hundred_concurrent_redemptions_of_a_balance_covering_ten_let_exactly_ten_through(
    api: EarnApi,
) -> None:
    customer = unique("c")
    await api.grant(customer, 10 * 100)

    responses = await asyncio.gather(
        *(api.redeem(customer, {"reward": "voucher-50k"}) for _ in range(100))
    )

    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 10
    assert statuses.count(409) == 90
    refused = [r.json() for r in responses if r.status_code == 409]
    assert {p["code"] for p in refused} == {"insufficient_points"}
    assert {r.headers["content-type"] for r in responses if r.status_code == 409} == {
        "application/problem+json"
    }
    vouchers = [r.json()["voucher_code"] for r in responses if r.status_code == 201]
    assert len(set(vouchers)) == 10
    assert all(VOUCHER.match(v) for v in vouchers)
    assert await api.balance(customer) == 0
    assert await api.ledger_sum(customer) == 0
    kinds = await api.db.fetch(
        "SELECT kind, count(*) AS n, min(balance_after) AS low FROM earn.ledger"
        " WHERE customer_id = $1 GROUP BY kind",
        customer,
    )
    assert {(r["kind"], r["n"]) for r in kinds} == {("adjusted", 1), ("redeemed", 10)}
    assert min(r["low"] for r in kinds) == 0


async def test_a_redemption_takes_the_points_issues_a_voucher_and_publishes_points_redeemed(
    api: EarnApi, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points:
        await api.grant(customer, 250)
        response = await api.redeem(customer, {"reward": "voucher-any", "currency": "USD"})
        published = await points.collect(lambda r: r.key == customer.encode(), count=2)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["points"] == 200
    assert body["value"] == {"amount": "4.00", "currency": "USD"}
    assert body["status"] == "issued"
    assert body["reward"] == {
        "code": "voucher-any",
        "name": "Voucher in either currency",
        "kind": "voucher",
    }
    events = [json.loads(r.value) for r in published]
    assert [(e["type"], e["data"]["delta"], e["data"]["balance_after"]) for e in events] == [
        ("points.adjusted", 250, 250),
        ("points.redeemed", -200, 50),
    ]
    assert events[1]["data"]["entry_id"] == body["redeemed_entry_id"]
    fetched = await api.client.get(f"/v1/redemptions/{body['redemption_id']}")
    assert fetched.json() == body


async def test_points_as_money_is_bought_in_whole_steps(api: EarnApi) -> None:
    customer = unique("c")
    await api.grant(customer, 100)

    by_steps = await api.redeem(
        customer, {"reward": "pay-with-points", "steps": 3, "currency": "VND"}
    )
    by_points = await api.redeem(
        customer, {"reward": "pay-with-points", "points": 50, "currency": "USD"}
    )
    off_step = await api.redeem(
        customer, {"reward": "pay-with-points", "points": 15, "currency": "VND"}
    )

    assert (by_steps.status_code, by_points.status_code) == (201, 201)
    assert (by_steps.json()["points"], by_steps.json()["value"]) == (
        30,
        {"amount": "3000", "currency": "VND"},
    )
    assert by_points.json()["value"] == {"amount": "0.25", "currency": "USD"}
    assert off_step.status_code == 422
    assert off_step.json()["errors"][0]["location"] == "body.points"
    assert await api.balance(customer) == 20


async def test_the_same_key_and_body_replay_the_first_response_and_redeem_once(
    api: EarnApi,
) -> None:
    customer = unique("c")
    await api.grant(customer, 500)
    same = key()
    body = {"reward": "free-shipping"}

    first = await api.redeem(customer, body, **{"Idempotency-Key": same})
    again = await api.redeem(customer, {"reward": "free-shipping"}, **{"Idempotency-Key": same})

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await api.balance(customer) == 450


async def test_concurrent_requests_with_one_key_redeem_once_and_all_get_the_same_answer(
    api: EarnApi,
) -> None:
    customer = unique("c")
    await api.grant(customer, 500)
    same = key()

    responses = await asyncio.gather(
        *(
            api.redeem(customer, {"reward": "tea-gift"}, **{"Idempotency-Key": same})
            for _ in range(8)
        )
    )

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["redemption_id"] for r in responses}) == 1
    assert sum(1 for r in responses if "idempotent-replayed" not in r.headers) == 1
    assert await api.balance(customer) == 200
    assert responses[0].json()["sku"] == "TEA-1"


async def test_a_key_reused_with_another_body_is_a_conflict_and_changes_nothing(
    api: EarnApi,
) -> None:
    customer = unique("c")
    await api.grant(customer, 500)
    same = key()

    first = await api.redeem(customer, {"reward": "free-shipping"}, **{"Idempotency-Key": same})
    other_body = await api.redeem(customer, {"reward": "tea-gift"}, **{"Idempotency-Key": same})
    other_customer = unique("c")
    await api.grant(other_customer, 500)
    other_path = await api.redeem(
        other_customer, {"reward": "free-shipping"}, **{"Idempotency-Key": same}
    )

    assert first.status_code == 201
    for refused in (other_body, other_path):
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "idempotency_key_reused"
    assert (await api.balance(customer), await api.balance(other_customer)) == (450, 500)


async def test_a_refusal_is_replayed_for_its_key_and_a_new_key_tries_again(api: EarnApi) -> None:
    customer = unique("c")
    await api.grant(customer, 60)
    same = key()

    refused = await api.redeem(customer, {"reward": "voucher-50k"}, **{"Idempotency-Key": same})
    await api.grant(customer, 40)
    replayed = await api.redeem(customer, {"reward": "voucher-50k"}, **{"Idempotency-Key": same})
    fresh = await api.redeem(customer, {"reward": "voucher-50k"})

    assert (refused.status_code, replayed.status_code, fresh.status_code) == (409, 409, 201)
    assert replayed.json() == refused.json()
    assert "100" in refused.json()["detail"]
    assert await api.balance(customer) == 0


async def test_cancelling_gives_the_points_back_once_and_voids_the_voucher(
    api: EarnApi, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda r: r.key == customer.encode()  # noqa: E731

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points:
        await api.grant(customer, 100)
        redeemed = (await api.redeem(customer, {"reward": "voucher-50k"})).json()
        path = f"/v1/redemptions/{redeemed['redemption_id']}/cancel"
        cancels = await asyncio.gather(
            *(api.client.post(path, json={"reason": "changed my mind"}) for _ in range(5))
        )
        published = await points.collect(mine, count=3)
        later = await points.settle(mine, seconds=1.0)

    assert {c.status_code for c in cancels} == {200}
    body = cancels[0].json()
    assert body["status"] == "cancelled"
    assert body["cancel_reason"] == "changed my mind"
    assert body["voucher_code"] == redeemed["voucher_code"]
    assert all(c.json() == body for c in cancels)
    assert await api.balance(customer) == 100
    assert await api.ledger_sum(customer) == 100
    restored = await api.db.fetch(
        "SELECT entry_id, delta FROM earn.ledger WHERE customer_id = $1 AND kind = 'restored'",
        customer,
    )
    assert [(r["entry_id"], r["delta"]) for r in restored] == [(body["restored_entry_id"], 100)]
    events = [json.loads(r.value) for r in published]
    assert [(e["type"], e["data"]["delta"], e["data"]["balance_after"]) for e in events] == [
        ("points.adjusted", 100, 100),
        ("points.redeemed", -100, 0),
        ("points.redeemed", 100, 100),
    ]
    assert events[2]["data"]["entry_id"] == body["restored_entry_id"]
    assert later == []
    fetched = await api.client.get(f"/v1/redemptions/{redeemed['redemption_id']}")
    assert fetched.json() == body


async def test_a_negative_balance_blocks_redemptions_until_it_is_positive_again(
    api: EarnApi,
) -> None:
    customer = unique("c")
    await api.grant(customer, 100)
    deduct = await api.client.post(
        f"/v1/admin/customers/{customer}/adjustments",
        json={"points": -150, "reason": "chargeback", "force": True},
        headers={**ADMIN, "Idempotency-Key": key()},
    )
    assert deduct.status_code == 201, deduct.text

    blocked = await api.redeem(customer, {"reward": "free-shipping"})
    balance = (await api.client.get(f"/v1/customers/{customer}/balance")).json()
    await api.grant(customer, 100)
    unblocked = await api.redeem(customer, {"reward": "free-shipping"})

    assert blocked.status_code == 409
    assert blocked.json()["code"] == "negative_balance"
    assert "-50" in blocked.json()["detail"]
    assert balance["points"]["available"] == -50
    assert balance["redemptions_blocked"] is True
    assert unblocked.status_code == 201
    assert await api.balance(customer) == await api.ledger_sum(customer) == 0


async def test_pending_points_cannot_be_spent(api: EarnApi, producer: AIOKafkaProducer) -> None:
    customer = unique("c")
    await api.grant(customer, 20)
    event = order_paid(customer, total="5000000", currency="VND")  # 500 points, pending

    await producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())
    balance = await eventually(
        lambda: balance_of(api, customer), lambda b: b["points"]["pending"] == 500
    )
    refused = await api.redeem(customer, {"reward": "free-shipping"})

    assert balance["points"]["available"] == 20
    assert balance["redemptions_blocked"] is False
    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_points"
    assert "500 pending points cannot be spent" in refused.json()["detail"]
    assert await api.balance(customer) == 20


async def test_an_inactive_reward_is_not_offered_and_cannot_be_redeemed(api: EarnApi) -> None:
    customer = unique("c")
    await api.grant(customer, 100)

    catalogue = (await api.client.get("/v1/rewards")).json()
    refused = await api.redeem(customer, {"reward": "retired"})

    assert [r["code"] for r in catalogue["rewards"]] == [
        "voucher-50k",
        "voucher-any",
        "pay-with-points",
        "free-shipping",
        "tea-gift",
    ]
    assert catalogue["rewards"][2]["value"] == {"VND": "1000", "USD": "0.05"}
    assert catalogue["rewards"][4]["sku"] == "TEA-1"
    assert refused.status_code == 409
    assert refused.json()["code"] == "reward_inactive"
    assert await api.balance(customer) == 100


async def balance_of(api: EarnApi, customer: str) -> dict[str, Any]:
    response = await api.client.get(f"/v1/customers/{customer}/balance")
    return dict(response.json())

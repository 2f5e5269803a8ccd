"""Records past the contract's bounds, between valid neighbours on one partition of the real
broker: the bad one is a dead letter with its reason, the neighbours are applied."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from earn_support import earn_of_its_own
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, unique

from services.earn.programme import parse_programme
from shared.clock import FixedClock
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS

T0 = datetime(2027, 3, 4, 5, 0, tzinfo=UTC)
# 10 million points a dollar: an order of 100 billion dollars earns 10^18 points, nine of them
# fit a 64-bit balance (9.22 * 10^18) and a tenth does not.
PROGRAMME = {"currencies": {"USD": {"per_amount": Decimal(1), "points": 10_000_000}}}


@dataclass
class Earn:
    db: asyncpg.Pool
    producer: AIOKafkaProducer
    bootstrap: str

    async def send(self, value: bytes, key: bytes | None) -> None:
        # One partition: the bad record sits between its neighbours, in order.
        await self.producer.send_and_wait("shop.orders", value, key=key, partition=0)

    async def balance(self, customer: str) -> int | None:
        found: int | None = await self.db.fetchval(
            "SELECT points_balance FROM earn.accounts WHERE customer_id = $1", customer
        )
        return found


@pytest.fixture(scope="module")
async def earn(infrastructure: Endpoints, producer: AIOKafkaProducer) -> AsyncIterator[Earn]:
    clock = FixedClock(T0)
    programme = parse_programme(PROGRAMME)
    async with earn_of_its_own(infrastructure, "bounds", programme=programme, clock=clock) as own:
        pool = await asyncpg.create_pool(own.database_url, min_size=1, max_size=2)
        try:
            yield Earn(pool, producer, infrastructure.kafka_bootstrap)
        finally:
            await pool.close()


def paid(customer: str, amount: str = "10", *, at: datetime = T0) -> CloudEvent[Any]:
    data = TOPICS["shop.orders"]["order.paid"].model_validate(
        {
            "order_id": unique("o"),
            "customer_id": customer,
            "currency": "USD",
            "items": [
                {"sku": "TEA", "name": "Tea", "category": "g", "quantity": 1, "unit_price": "1"}
            ],
            "totals": {"total": {"amount": amount, "currency": "USD"}},
        }
    )
    return make_event("order.paid", source="tests/shop", subject=customer, data=data, time=at)


def _edited(edit: Callable[[str], str]) -> Callable[[str], tuple[bytes, bytes | None]]:
    def bad(customer: str) -> tuple[bytes, bytes | None]:
        text = encoded(paid(customer)).decode()
        changed = edit(text)
        assert changed != text
        return changed.encode(), customer.encode()

    return bad


def _keyed(key: bytes | None) -> Callable[[str], tuple[bytes, bytes | None]]:
    return lambda customer: (encoded(paid(customer)), key)


BAD = {
    "time past year 9999 in UTC": (
        _edited(
            lambda t: t.replace(
                '"time":"2027-03-04T05:00:00Z"', '"time":"9999-12-31T23:59:59-01:00"'
            )
        ),
        "SchemaViolation",
        "time: Input should be less than 2200-01-01T00:00:00Z",
    ),
    "time in year 9999": (
        _edited(lambda t: t.replace('"time":"2027-', '"time":"9999-')),
        "SchemaViolation",
        "time: Input should be less than",
    ),
    "time two days ahead of the clock": (
        lambda c: (encoded(paid(c, at=T0 + timedelta(days=2))), c.encode()),
        "TimeAhead",
        "2.0 days ahead",
    ),
    "amount twice": (
        _edited(lambda t: t.replace('"amount":"10"', '"amount":"10","amount":"9999999999"')),
        "DuplicateKey",
        "'amount'",
    ),
    "U+0000 in an item name": (
        _edited(lambda t: t.replace('"name":"Tea"', '"name":"T\\u0000ea"')),
        "SchemaViolation",
        "data.items[0].name",
    ),
    "thirteen-digit amount": (
        _edited(lambda t: t.replace('"amount":"10"', '"amount":"1000000000000"')),
        "SchemaViolation",
        "at most 12 digits",
    ),
    "empty key": (_keyed(b""), "KeyMismatch", "has no key"),
    "no key": (_keyed(None), "KeyMismatch", "has no key"),
    "another customer's key": (_keyed(b"someone-else"), "KeyMismatch", "keyed otherwise"),
}


def _dead_letter_of(customer: str) -> Callable[[Any], bool]:
    def accept(record: Any) -> bool:
        headers = dict(record.headers)
        return headers.get("x-dlq-service") == b"earn" and customer.encode() in record.value

    return accept


@pytest.mark.parametrize("case", sorted(BAD))
async def test_a_bad_record_is_dead_lettered_and_its_neighbours_applied(
    earn: Earn, case: str
) -> None:
    make_bad, error_class, reason = BAD[case]
    before, bad_one, after = unique("before"), unique("bad"), unique("after")
    value, key = make_bad(bad_one)

    async with TopicTail(earn.bootstrap, "shop.orders.dlq") as dlq:
        await earn.send(encoded(paid(before)), before.encode())
        await earn.send(value, key)
        await earn.send(encoded(paid(after)), after.encode())
        [dead] = await dlq.collect(_dead_letter_of(bad_one), count=1)

    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-dlq-error-class"] == error_class
    assert reason in headers["x-dlq-error-message"]
    assert dead.value == value
    for neighbour in (before, after):
        assert await eventually(partial(earn.balance, neighbour), lambda b: b == 100_000_000)
    assert await earn.balance(bad_one) is None


async def test_an_order_that_would_take_a_balance_past_64_bits_is_dead_lettered(
    earn: Earn,
) -> None:
    rich, after = unique("rich"), unique("after")
    orders = [paid(rich, "100000000000") for _ in range(10)]

    async with TopicTail(earn.bootstrap, "shop.orders.dlq") as dlq:
        for order in orders:
            await earn.send(encoded(order), rich.encode())
        await earn.send(encoded(paid(after)), after.encode())
        [dead] = await dlq.collect(_dead_letter_of(rich), count=1)

    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-dlq-error-class"] == "PointsOutOfRange"
    assert json.loads(dead.value)["id"] == orders[-1].id
    assert await eventually(lambda: earn.balance(after), lambda b: b == 100_000_000)
    assert await earn.balance(rich) == 9 * 10**18

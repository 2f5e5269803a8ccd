"""Orders through earn on the real broker and database, with a programme of their own: pending
points and the return window, cashback, refunds and cancellations (also before the payment),
campaign caps, punch cards and paid memberships."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
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
from support import (
    TopicTail,
    encoded,
    eventually,
    order_cancelled,
    order_refunded,
    unique,
)

from services.earn.programme import parse_programme
from shared.clock import FixedClock
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
# Refunds and cancellations, dated by the pinned clock like every event here.
AN_HOUR_LATER = T0 + timedelta(hours=1)

PROGRAMME = {
    "time_zone": "America/New_York",
    "currencies": {"USD": {"per_amount": Decimal(1), "points": 1}},
    "cashback": {"percent": {"USD": Decimal(2)}},
    "pending": {"return_window_days": 14, "completion_timeout_days": 30},
    "campaigns": [
        {
            "code": "welcome-month",
            "name": "10 bonus points an order, 15 at most",
            "starts_at": datetime(2026, 1, 1, tzinfo=UTC),
            "ends_at": datetime(2030, 1, 1, tzinfo=UTC),
            "bonus_points": 10,
            "per_customer_cap": 15,
        }
    ],
    "punch_cards": [
        {
            "code": "coffee",
            "name": "Every third coffee",
            "every": 3,
            "categories": ["coffee"],
            "min_amount": {"USD": Decimal(4)},
            "reward_points": 7,
        }
    ],
    "memberships": [{"sku": "plus-year", "tier": "gold", "months": 12}],
}


@dataclass
class Earn:
    db: asyncpg.Pool
    clock: FixedClock
    producer: AIOKafkaProducer
    bootstrap_servers: str

    async def publish(self, *events: CloudEvent[Any]) -> None:
        for event in events:
            key = event.subject.encode()
            await self.producer.send_and_wait("shop.orders", encoded(event), key=key)

    async def account(self, customer: str) -> dict[str, Any]:
        row = await self.db.fetchrow(
            """SELECT a.points_balance, a.points_pending,
                      coalesce(c.balance_minor, 0) AS credit, coalesce(c.pending_minor, 0)
                          AS credit_pending
               FROM earn.accounts a
               LEFT JOIN earn.credit_accounts c ON c.customer_id = a.customer_id
               WHERE a.customer_id = $1""",
            customer,
        )
        return {} if row is None else dict(row)

    async def entries(self, customer: str) -> list[tuple[str, str, int, int]]:
        rows = await self.db.fetch(
            """SELECT kind, balance_kind, delta, balance_after FROM earn.ledger
               WHERE customer_id = $1 ORDER BY seq""",
            customer,
        )
        return [(r["kind"], r["balance_kind"], r["delta"], r["balance_after"]) for r in rows]

    async def order(self, order_id: str) -> dict[str, Any]:
        row = await self.db.fetchrow("SELECT * FROM earn.orders WHERE order_id = $1", order_id)
        return {} if row is None else dict(row)

    async def membership(self, order_id: str) -> dict[str, Any]:
        """The one membership the order paid for."""
        row = await self.db.fetchrow(
            """SELECT quantity, refunded_quantity, cancelled_at FROM earn.memberships
               WHERE order_id = $1""",
            order_id,
        )
        return {} if row is None else dict(row)


@pytest.fixture(scope="module")
async def earn_with_programme(
    infrastructure: Endpoints, producer: AIOKafkaProducer
) -> AsyncIterator[Earn]:
    clock = FixedClock(T0)
    async with earn_of_its_own(
        infrastructure,
        "orders",
        programme=parse_programme(PROGRAMME),
        clock=clock,
        release_interval_s=0.2,
        # These tests publish a whole order's life first and move the clock through it after.
        event_ahead_max_s=60 * 86_400,
    ) as own:
        pool = await asyncpg.create_pool(own.database_url, min_size=1, max_size=2)
        try:
            yield Earn(pool, clock, producer, infrastructure.kafka_bootstrap)
        finally:
            await pool.close()


@pytest.fixture
def earn(earn_with_programme: Earn) -> Earn:
    earn_with_programme.clock.set(T0)
    return earn_with_programme


def paid(
    customer: str,
    *lines: tuple[str, str, str],
    order_id: str | None = None,
    at: datetime = T0,
) -> CloudEvent[Any]:
    """Lines are (sku, category, price), quantity 1; the total is their sum."""
    lines = lines or (("tee", "apparel", "100"),)
    total = sum(Decimal(price) for _, _, price in lines)
    data = TOPICS["shop.orders"]["order.paid"].model_validate(
        {
            "order_id": order_id or unique("o"),
            "customer_id": customer,
            "currency": "USD",
            "items": [
                {"sku": s, "name": s, "category": c, "quantity": 1, "unit_price": p}
                for s, c, p in lines
            ],
            "totals": {"total": {"amount": str(total), "currency": "USD"}},
        }
    )
    return make_event("order.paid", source="tests/shop", subject=customer, data=data, time=at)


def refund_of(
    customer: str, order_id: str, amount: str, *items: tuple[str, int], at: datetime
) -> CloudEvent[Any]:
    """A partial refund of `amount` USD giving back `items`, (sku, quantity) each."""
    data = TOPICS["shop.orders"]["order.refunded"].model_validate(
        {
            "order_id": order_id,
            "customer_id": customer,
            "refund": {"amount": amount, "currency": "USD"},
            "full": False,
            "items": [{"sku": sku, "quantity": quantity} for sku, quantity in items],
        }
    )
    return make_event("order.refunded", source="tests/shop", subject=customer, data=data, time=at)


def completed(customer: str, order_id: str, at: datetime) -> CloudEvent[Any]:
    data = TOPICS["shop.orders"]["order.completed"].model_validate(
        {"order_id": order_id, "customer_id": customer}
    )
    return make_event("order.completed", source="tests/shop", subject=customer, data=data, time=at)


async def test_points_and_cashback_stay_pending_until_the_return_window_after_completion(
    earn: Earn, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    order = paid(customer)
    order_id = order.data.order_id
    await earn.publish(order)
    # 100 points, 10 campaign bonus points, 2% cashback = 200 cents: all pending.
    pending = {"points_balance": 0, "points_pending": 110, "credit": 0, "credit_pending": 200}
    await eventually(lambda: earn.account(customer), lambda a: a == pending)
    assert await earn.entries(customer) == []

    await earn.publish(completed(customer, order_id, T0 + timedelta(days=2)))
    due = T0 + timedelta(days=16)
    await eventually(lambda: earn.order(order_id), lambda o: o.get("release_at") == due)
    assert (await earn.order(order_id))["status"] == "pending"

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.points") as points:
        earn.clock.set(due)
        await eventually(lambda: earn.entries(customer), lambda e: len(e) == 2)
        published = await points.collect(lambda r: r.key == customer.encode(), count=2)

    assert await earn.entries(customer) == [
        ("earned", "points", 110, 110),
        ("earned", "store_credit", 200, 200),
    ]
    available = {"points_balance": 110, "points_pending": 0, "credit": 200, "credit_pending": 0}
    assert await earn.account(customer) == available
    bodies = [json.loads(r.value) for r in published]
    assert {b["data"]["balance_kind"] for b in bodies} == {"points", "store_credit"}
    assert {b["type"] for b in bodies} == {"points.earned"}


async def test_without_a_completion_the_window_starts_at_the_timeout(earn: Earn) -> None:
    customer = unique("c")
    order = paid(customer)
    await earn.publish(order)
    await eventually(lambda: earn.order(order.data.order_id), bool)

    earn.clock.set(T0 + timedelta(days=43))
    await earn.publish(paid(customer, at=T0 + timedelta(days=43)))  # proves a batch went by
    assert await earn.entries(customer) == []
    earn.clock.set(T0 + timedelta(days=44))
    entries = await eventually(lambda: earn.entries(customer), lambda e: len(e) == 2)
    assert entries[0] == ("earned", "points", 110, 110)


async def test_partial_refunds_take_their_share_before_and_after_release(earn: Earn) -> None:
    customer = unique("c")
    order = paid(customer)
    order_id = order.data.order_id
    refund = order_refunded(customer, order_id, amount="25", currency="USD", at=AN_HOUR_LATER)
    await earn.publish(order, refund)
    # A quarter of 110 points is 27.5: 27 go; a quarter of 200 cents: 50.
    await eventually(
        lambda: earn.account(customer),
        lambda a: a.get("points_pending") == 83 and a.get("credit_pending") == 150,
    )

    await earn.publish(completed(customer, order_id, T0))
    earn.clock.set(T0 + timedelta(days=14))
    await eventually(lambda: earn.entries(customer), lambda e: len(e) == 2)

    rest = order_refunded(
        customer, order_id, amount="75", currency="USD", at=T0 + timedelta(days=20)
    )
    await earn.publish(rest)
    entries = await eventually(lambda: earn.entries(customer), lambda e: len(e) == 4)
    assert entries == [
        ("earned", "points", 83, 83),
        ("earned", "store_credit", 150, 150),
        ("reversed", "points", -83, 0),
        ("reversed", "store_credit", -150, 0),
    ]
    assert (await earn.order(order_id))["points_reversed"] == 110


async def test_a_refund_that_arrives_before_its_payment_waits_and_then_applies(
    earn: Earn,
) -> None:
    customer = unique("c")
    order = paid(customer)
    order_id = order.data.order_id
    early = order_refunded(customer, order_id, amount="40", currency="USD", at=AN_HOUR_LATER)
    await earn.publish(early)

    async def waiting() -> Any:
        return await earn.db.fetchval(
            "SELECT count(*) FROM earn.waiting_events WHERE order_id = $1", order_id
        )

    await eventually(waiting, lambda n: n == 1)

    await earn.publish(order)
    # 40% of 110 points is 44 and of 200 cents 80: taken back while still pending.
    await eventually(lambda: earn.account(customer), lambda a: a.get("points_pending") == 66)
    assert await waiting() == 0
    row = await earn.order(order_id)
    assert (row["refunded"], row["points_reversed"], row["credit_reversed"]) == (40, 44, 80)


async def test_a_cancellation_takes_back_everything_once_and_a_second_payment_id_is_ignored(
    earn: Earn,
) -> None:
    customer = unique("c")
    order = paid(customer)
    order_id = order.data.order_id
    again = paid(customer, order_id=order_id)  # the same order paid under another event id
    await earn.publish(order, again, completed(customer, order_id, T0))
    earn.clock.set(T0 + timedelta(days=14))
    await eventually(lambda: earn.entries(customer), lambda e: len(e) == 2)

    cancel = order_cancelled(customer, order_id, at=T0 + timedelta(days=15))
    await earn.publish(cancel, cancel)
    entries = await eventually(lambda: earn.entries(customer), lambda e: len(e) == 4)
    await earn.publish(paid(customer, order_id=unique("later")))  # a later batch went by
    # 100 points and the 5 bonus points left under the campaign's cap of 15.
    await eventually(lambda: earn.account(customer), lambda a: a["points_pending"] == 105)

    assert entries[2:] == [("reversed", "points", -110, 0), ("reversed", "store_credit", -200, 0)]
    assert len(await earn.entries(customer)) == 4


async def test_campaign_bonus_stops_at_the_customers_cap(earn: Earn) -> None:
    customer = unique("c")
    orders = [paid(customer, ("mug", "home", "20")) for _ in range(3)]
    await earn.publish(*orders)
    rows = [await eventually(partial(earn.order, o.data.order_id), bool) for o in orders]

    assert [r["points"] for r in rows] == [30, 25, 20]
    bonuses = [json.loads(r["breakdown"]).get("campaign:welcome-month") for r in rows]
    assert bonuses == [10, 5, None]


async def test_every_third_qualifying_coffee_earns_the_reward_and_small_orders_do_not_punch(
    earn: Earn,
) -> None:
    customer = unique("c")
    coffee = ("latte", "coffee", "5")
    sip = ("espresso-shot", "coffee", "2")  # under the 4 USD minimum: no punch
    orders = [paid(customer, coffee), paid(customer, sip), paid(customer, coffee)]
    orders += [paid(customer, sip, ("cake", "bakery", "9")), paid(customer, coffee)]
    await earn.publish(*orders)
    await eventually(lambda: earn.order(orders[-1].data.order_id), bool)

    rows = [await earn.order(o.data.order_id) for o in orders]
    rewards = [json.loads(r["breakdown"]).get("punch_card:coffee") for r in rows]
    assert rewards == [None, None, None, None, 7]
    punches = await earn.db.fetchval(
        "SELECT punches FROM earn.punch_cards WHERE card = 'coffee' AND customer_id = $1",
        customer,
    )
    assert punches == 3

    await earn.publish(order_cancelled(customer, orders[-1].data.order_id, at=AN_HOUR_LATER))
    await eventually(
        lambda: earn.db.fetchval(
            "SELECT punches FROM earn.punch_cards WHERE card = 'coffee' AND customer_id = $1",
            customer,
        ),
        lambda n: n == 2,
    )


async def test_a_membership_purchase_is_announced_once_for_tiering(
    earn: Earn, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    order = paid(customer, ("plus-year", "membership", "99"))

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.memberships") as memberships:
        await earn.publish(order, order)
        [announced] = await memberships.collect(lambda r: r.key == customer.encode(), count=1)
        later = await memberships.settle(lambda r: r.key == customer.encode(), seconds=1.5)

    body = json.loads(announced.value)
    assert body["type"] == "membership.purchased"
    assert body["data"]["tier"] == "gold"
    assert body["data"]["order_id"] == order.data.order_id
    assert body["data"]["ends_at"].startswith("2027-12-02T03:00:00")
    assert later == []


async def test_cancelling_a_membership_order_announces_the_cancellation_once(
    earn: Earn, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    order = paid(customer, ("plus-year", "membership", "99"))
    order_id = order.data.order_id
    cancelled = order_cancelled(customer, order_id, at=AN_HOUR_LATER)
    refunded = order_refunded(customer, order_id, amount="99", at=AN_HOUR_LATER)

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.memberships") as memberships:
        await earn.publish(order)
        await memberships.collect(lambda r: r.key == customer.encode(), count=1)
        await earn.publish(cancelled, refunded)  # taken back in full twice: one cancellation
        [announced] = await memberships.collect(lambda r: r.key == customer.encode(), count=1)
        later = await memberships.settle(lambda r: r.key == customer.encode(), seconds=1.5)

    body = json.loads(announced.value)
    assert body["type"] == "membership.cancelled"
    assert body["id"] == f"membership-cancelled:{order_id}:plus-year"
    assert body["data"]["tier"] == "gold"
    assert body["data"]["order_id"] == order_id
    assert body["data"]["cancelled_at"] == body["time"]
    assert datetime.fromisoformat(body["time"]) == cancelled.time
    assert later == []


async def test_refunding_the_membership_line_alone_cancels_the_membership_once(
    earn: Earn, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda r: r.key == customer.encode()  # noqa: E731
    order = paid(customer, ("plus-year", "membership", "99"), ("tee", "apparel", "100"))
    order_id = order.data.order_id
    refund = refund_of(customer, order_id, "99", ("plus-year", 1), at=T0 + timedelta(days=1))
    # The same SKU refunded again under another event id, then the rest of the order.
    again = refund_of(customer, order_id, "50", ("plus-year", 1), at=T0 + timedelta(days=2))
    rest = order_refunded(customer, order_id, currency="USD", at=T0 + timedelta(days=3))

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.memberships") as memberships:
        await earn.publish(order)
        await memberships.collect(mine, count=1)
        await earn.publish(refund, refund)  # delivered twice
        [announced] = await memberships.collect(mine, count=1)
        await earn.publish(again, rest)
        await eventually(lambda: earn.order(order_id), lambda o: o["status"] == "cancelled")
        later = await memberships.settle(mine, seconds=1.5)

    body = json.loads(announced.value)
    assert body["type"] == "membership.cancelled"
    assert body["id"] == f"membership-cancelled:{order_id}:plus-year"
    assert body["data"]["tier"] == "gold"
    assert datetime.fromisoformat(body["data"]["cancelled_at"]) == refund.time
    assert later == []
    row = await earn.membership(order_id)
    assert (row["refunded_quantity"], row["cancelled_at"]) == (1, refund.time)


async def test_a_partial_refund_of_other_lines_keeps_the_membership(
    earn: Earn, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda r: r.key == customer.encode()  # noqa: E731
    order = paid(customer, ("plus-year", "membership", "99"), ("tee", "apparel", "100"))
    order_id = order.data.order_id
    refund = refund_of(customer, order_id, "100", ("tee", 1), at=T0 + timedelta(days=1))

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.memberships") as memberships:
        await earn.publish(order)
        await memberships.collect(mine, count=1)
        await earn.publish(refund)
        await eventually(lambda: earn.order(order_id), lambda o: o["refunded"] == 100)
        later = await memberships.settle(mine, seconds=1.5)

    assert later == []
    row = await earn.membership(order_id)
    assert (row["refunded_quantity"], row["cancelled_at"]) == (0, None)
    assert (await earn.order(order_id))["status"] == "pending"


async def test_a_membership_bought_twice_ends_once_both_units_are_refunded(
    earn: Earn, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda r: r.key == customer.encode()  # noqa: E731
    membership = ("plus-year", "membership", "99")
    order = paid(customer, membership, membership, ("tee", "apparel", "100"))
    order_id = order.data.order_id
    first = refund_of(customer, order_id, "99", ("plus-year", 1), at=T0 + timedelta(days=1))
    second = refund_of(customer, order_id, "99", ("plus-year", 1), at=T0 + timedelta(days=2))

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.memberships") as memberships:
        await earn.publish(order)
        [purchased] = await memberships.collect(mine, count=1)
        await earn.publish(first)
        await eventually(lambda: earn.order(order_id), lambda o: o["refunded"] == 99)
        kept = await memberships.settle(mine, seconds=1.5)
        await earn.publish(second)
        [announced] = await memberships.collect(mine, count=1)

    assert json.loads(purchased.value)["type"] == "membership.purchased"
    assert kept == []  # one unit still paid for: one membership, still held
    body = json.loads(announced.value)
    assert body["type"] == "membership.cancelled"
    assert datetime.fromisoformat(body["data"]["cancelled_at"]) == second.time
    row = await earn.membership(order_id)
    assert (row["quantity"], row["refunded_quantity"]) == (2, 2)


async def test_a_membership_refund_before_the_payment_cancels_it_once_the_payment_arrives(
    earn: Earn, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda r: r.key == customer.encode()  # noqa: E731
    order = paid(customer, ("plus-year", "membership", "99"), ("tee", "apparel", "100"))
    order_id = order.data.order_id
    early = refund_of(customer, order_id, "99", ("plus-year", 1), at=T0 + timedelta(hours=1))

    async def waiting() -> int:
        return int(
            await earn.db.fetchval(
                "SELECT count(*) FROM earn.waiting_events WHERE order_id = $1", order_id
            )
        )

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.memberships") as memberships:
        await earn.publish(early)
        await eventually(waiting, lambda n: n == 1)
        await earn.publish(order)
        announced = await memberships.collect(mine, count=2)
        later = await memberships.settle(mine, seconds=1.5)

    bodies = [json.loads(r.value) for r in announced]
    assert [b["type"] for b in bodies] == ["membership.purchased", "membership.cancelled"]
    assert datetime.fromisoformat(bodies[1]["data"]["cancelled_at"]) == early.time
    assert later == []
    assert await waiting() == 0
    assert (await earn.order(order_id))["refunded"] == 99


async def test_cancelling_a_membership_order_that_cost_nothing_cancels_the_membership(
    earn: Earn, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    mine = lambda r: r.key == customer.encode()  # noqa: E731
    order = paid(customer, ("plus-year", "membership", "0"))
    order_id = order.data.order_id

    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.memberships") as memberships:
        await earn.publish(order)
        await memberships.collect(mine, count=1)
        await earn.publish(order_cancelled(customer, order_id, at=T0 + timedelta(days=1)))
        [announced] = await memberships.collect(mine, count=1)

    body = json.loads(announced.value)
    assert body["type"] == "membership.cancelled"
    assert body["id"] == f"membership-cancelled:{order_id}:plus-year"


async def test_a_waiting_refund_refused_once_its_order_is_known_goes_to_the_dead_letter_topic(
    earn: Earn, infrastructure: Endpoints
) -> None:
    customer = unique("c")
    order = paid(customer)
    wrong = order_refunded(
        customer, order.data.order_id, amount="10", currency="EUR", at=AN_HOUR_LATER
    )
    by_earn = lambda r: r.key == customer.encode() and dict(r.headers)["x-dlq-service"] == b"earn"  # noqa: E731

    async with TopicTail(infrastructure.kafka_bootstrap, "shop.orders.dlq") as dlq:
        await earn.publish(wrong, order)
        [dead] = await dlq.collect(by_earn, count=1)

    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["x-dlq-error-class"] == "RefundCurrency"
    assert "EUR" in headers["x-dlq-error-message"]
    assert json.loads(dead.value)["id"] == wrong.id
    row = await earn.order(order.data.order_id)
    assert (row["refunded"], row["points_reversed"]) == (0, 0)  # the order is untouched
    still_claimed = await earn.db.fetchval(
        "SELECT count(*) FROM earn.inbox WHERE event_id = $1", wrong.id
    )
    assert still_claimed == 0  # a replay from the dead-letter topic applies anew

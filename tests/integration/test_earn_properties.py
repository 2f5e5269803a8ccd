"""Properties of the ledger over random order histories on the real database: payments,
completions, refunds and cancellations in any order, released as time passes, each history
replayed twice, with redemptions in between. The balance is always the sum of the entries,
pending points are what the orders still hold, nothing is taken back twice, no redemption takes
the balance below zero, and a replay changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from earn_support import caught_up_directory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from infrastructure import Endpoints
from pydantic import SecretStr
from support import consumer_record, database_of_its_own, encoded, unique

from services.earn.adapters.unit_of_work import PostgresUnitOfWork
from services.earn.bootstrap import definition
from services.earn.handlers import RedeemReward, redeem_reward, release_due
from services.earn.programme import Programme, parse_programme
from services.earn.programme_book import ProgrammeBook
from services.earn.refusals import Conflict, NotFound
from services.earn.settings import EarnSettings
from shared.clock import FixedClock
from shared.consumer import BatchConsumer
from shared.db import apply_migrations
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS
from shared.runtime import MESSAGING_MIGRATIONS

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
PROGRAMME: Programme = parse_programme(
    {
        "currencies": {"USD": {"per_amount": Decimal(1), "points": 1}},
        "cashback": {"percent": {"USD": Decimal(3)}},
        "pending": {"return_window_days": 2, "completion_timeout_days": 3},
        "rewards": [
            {
                "code": "one-dollar",
                "name": "1 USD off",
                "kind": "voucher",
                "cost_points": 10,
                "value": {"USD": Decimal(1)},
            }
        ],
        "campaigns": [
            {
                "code": "bonus",
                "name": "Bonus",
                "starts_at": datetime(2027, 1, 1, tzinfo=UTC),
                "ends_at": datetime(2028, 1, 1, tzinfo=UTC),
                "bonus_points": 7,
                "per_customer_cap": 20,
            }
        ],
    }
)

ORDERS = 3
pay = st.tuples(st.just("pay"), st.integers(0, ORDERS - 1), st.integers(0, 50_000))
wait = st.tuples(st.just("wait"), st.just(0), st.integers(1, 12))
spend = st.tuples(st.just("redeem"), st.just(0), st.integers(1, 6))
step = st.one_of(  # payments, waits and redemptions drawn more often than the rest
    pay,
    pay,
    wait,
    wait,
    spend,
    spend,
    st.tuples(st.just("complete"), st.integers(0, ORDERS - 1), st.just(0)),
    st.tuples(st.just("refund"), st.integers(0, ORDERS - 1), st.integers(1, 30_000)),
    st.tuples(st.just("cancel"), st.integers(0, ORDERS - 1), st.just(0)),
)


@dataclass(frozen=True)
class Redeem:
    """The customer asks for the 10-point voucher this many times at once."""

    times: int


@dataclass
class Ledger:
    pool: asyncpg.Pool
    consumer: BatchConsumer
    clock: FixedClock


@pytest.fixture(scope="module")
async def ledger(infrastructure: Endpoints) -> AsyncIterator[Ledger]:
    async with database_of_its_own(infrastructure.database_url, "loyalty_props") as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        assert pool is not None
        clock = FixedClock(T0)
        service = definition(
            EarnSettings(database_url=SecretStr(url)),
            clock=clock,
            programme=PROGRAMME,
            directory=caught_up_directory(),
        )
        components = [("messaging", MESSAGING_MIGRATIONS), (service.name, service.migrations)]
        async with pool.acquire() as conn:
            await apply_migrations(conn, service.schema, components)
        consumer = BatchConsumer(
            service=service.name,
            schema=service.schema,
            topic="shop.orders",
            handler=service.handlers["shop.orders"],
            clock=clock,
        )
        consumer.bind(pool, lambda: None)
        try:
            yield Ledger(pool, consumer, clock)
        finally:
            await pool.close()


def event_of(type_: str, data: dict[str, Any], at: datetime) -> CloudEvent[Any]:
    model = TOPICS["shop.orders"][type_]
    subject = data["customer_id"]
    return make_event(
        type_, source="tests/shop", subject=subject, data=model.model_validate(data), time=at
    )


Step = CloudEvent[Any] | int | Redeem


def history(customer: str, steps: list[tuple[str, int, int]]) -> list[Step]:
    """Events, the days to wait (ints) between them, and redemptions."""
    orders = [unique("o") for _ in range(ORDERS)]
    at = T0
    out: list[Step] = []
    for kind, index, amount in steps:
        at += timedelta(minutes=1)
        base = {"order_id": orders[index], "customer_id": customer}
        if kind == "redeem":
            out.append(Redeem(amount))
        elif kind == "wait":
            out.append(amount)
            at += timedelta(days=amount)
        elif kind == "pay":
            cents = Decimal(amount) / 100
            money = {"amount": str(cents), "currency": "USD"}
            line = {
                "sku": "s",
                "name": "s",
                "category": "c",
                "quantity": 1,
                "unit_price": str(cents),
            }
            data = base | {"currency": "USD", "items": [line], "totals": {"total": money}}
            out.append(event_of("order.paid", data, at))
        elif kind == "complete":
            out.append(event_of("order.completed", base, at))
        elif kind == "refund":
            refund = {"amount": str(Decimal(amount) / 100), "currency": "USD"}
            out.append(event_of("order.refunded", base | {"refund": refund, "full": False}, at))
        else:
            out.append(event_of("order.cancelled", base, at))
    return out


async def play(ledger: Ledger, customer: str, events: list[Step], *, redeem: bool) -> None:
    """Deliver the events in order as time passes; redemptions only when `redeem` (they are
    requests, not events: a replay of the stream does not repeat them)."""
    ledger.clock.set(T0)
    for offset, item in enumerate(events):
        if isinstance(item, Redeem):
            if redeem:
                await asyncio.gather(*(spend_points(ledger, customer) for _ in range(item.times)))
            continue
        if isinstance(item, int):
            ledger.clock.set(ledger.clock.now() + timedelta(days=item))
            async with ledger.pool.acquire() as conn, conn.transaction():
                uow = PostgresUnitOfWork(conn)
                await release_due(uow, ProgrammeBook.fixed(PROGRAMME), due_by=ledger.clock.now())
            continue
        ledger.clock.set(max(ledger.clock.now(), item.time))
        record = consumer_record(encoded(item), offset=offset, key=customer.encode())
        await ledger.consumer.process([record])


async def spend_points(ledger: Ledger, customer: str) -> None:
    try:
        async with ledger.pool.acquire() as conn, conn.transaction():
            command = RedeemReward(
                shop_id="default", customer_id=customer, reward="one-dollar", currency="USD"
            )
            uow = PostgresUnitOfWork(conn)
            await redeem_reward(uow, command, programme=PROGRAMME, now=ledger.clock.now())
    except (Conflict, NotFound):  # not enough points, or no account yet: refused, nothing taken
        return


async def state(pool: asyncpg.Pool, customer: str) -> dict[str, Any]:
    entries = await pool.fetch(
        """SELECT entry_id, kind, balance_kind, delta, balance_after, order_id FROM earn.ledger
           WHERE customer_id = $1 ORDER BY seq""",
        customer,
    )
    account = await pool.fetchrow(
        "SELECT points_balance, points_pending FROM earn.accounts WHERE customer_id = $1",
        customer,
    )
    credit = await pool.fetchval(
        "SELECT balance_minor FROM earn.credit_accounts WHERE customer_id = $1", customer
    )
    orders = await pool.fetch(
        """SELECT order_id, points, points_reversed, credit_minor, credit_reversed, status
           FROM earn.orders WHERE customer_id = $1 ORDER BY order_id""",
        customer,
    )
    return {
        "entries": [tuple(e) for e in entries],
        "account": None if account is None else tuple(account),
        "credit": credit,
        "orders": [dict(o) for o in orders],
    }


def check_invariants(seen: dict[str, Any]) -> None:
    entries, orders = seen["entries"], seen["orders"]
    for kind in ("points", "store_credit"):
        running = 0
        for _, _, balance_kind, delta, balance_after, _ in entries:
            if balance_kind == kind:
                running += delta
                assert balance_after == running  # each entry's balance is the running sum
    points = sum(e[3] for e in entries if e[2] == "points")
    credit = sum(e[3] for e in entries if e[2] == "store_credit")
    if seen["account"] is not None:
        balance, pending = seen["account"]
        assert balance == points
        held = sum(o["points"] - o["points_reversed"] for o in orders if o["status"] == "pending")
        assert pending == held
    assert (seen["credit"] or 0) == credit
    for order in orders:
        assert 0 <= order["points_reversed"] <= order["points"]
        assert 0 <= order["credit_reversed"] <= order["credit_minor"]
        mine = sum(e[3] for e in entries if e[5] == order["order_id"] and e[2] == "points")
        if order["status"] == "available":  # in the ledger: what it earned less what went back
            assert mine == order["points"] - order["points_reversed"]
        else:  # pending, or cancelled while pending: never in the ledger
            assert mine == 0
    ids = [e[0] for e in entries]
    assert len(ids) == len(set(ids))
    for _, kind, _, delta, balance_after, _ in entries:
        if kind == "redeemed":
            assert delta == -10
            assert balance_after >= 0  # no redemption ever overdraws


def check_reversals(seen: dict[str, Any], events: list[CloudEvent[Any]]) -> None:
    """What each order gave back, computed from the events alone: every refund and
    cancellation counts, whether it came before or after the payment."""
    for order in seen["orders"]:
        mine = [e for e in events if e.data.order_id == order["order_id"]]
        total = next(e.data.totals.total.amount for e in mine if e.type == "order.paid")
        refunded = sum(
            (e.data.refund.amount for e in mine if e.type == "order.refunded"), Decimal(0)
        )
        everything = any(e.type == "order.cancelled" for e in mine) or refunded >= total
        expected = order["points"] if everything else int(order["points"] * refunded / total)
        assert order["points_reversed"] == expected


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(step, min_size=3, max_size=20))
async def test_any_order_history_keeps_the_ledger_true_and_a_replay_changes_nothing(
    ledger: Ledger, steps: list[tuple[str, int, int]]
) -> None:
    customer = unique("p")
    # Every history starts with points to spend: an order, delivered, past its return window.
    start = [("pay", 0, 25_000), ("complete", 0, 0), ("wait", 0, 3)]
    events = history(customer, start + steps)

    await play(ledger, customer, events, redeem=True)
    first = await state(ledger.pool, customer)
    check_invariants(first)
    check_reversals(first, [e for e in events if isinstance(e, CloudEvent)])

    await play(ledger, customer, events, redeem=False)  # every event delivered again
    assert await state(ledger.pool, customer) == first

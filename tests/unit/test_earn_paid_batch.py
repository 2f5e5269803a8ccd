"""A batch of payments in one pass, over the in-memory unit of work: duplicates, refusals,
campaign caps and punch cards decided in batch order, with nothing written for what is
refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from earn_fakes import FakeUnitOfWork
from support import encoded

from services.earn.domain.order_batch import NewOrder, first_orders
from services.earn.domain.orders import LEDGER_MAX
from services.earn.handlers import apply_orders
from services.earn.programme import parse_programme
from services.earn.programme_book import ProgrammeBook
from shared.clock import FixedClock
from shared.consumer import Incoming
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
PROGRAMMES = ProgrammeBook.fixed(
    parse_programme(
        {
            "currencies": {"USD": {"per_amount": Decimal(1), "points": 1}},
            "campaigns": [
                {
                    "code": "welcome",
                    "name": "10 bonus points an order, 15 at most",
                    "starts_at": datetime(2027, 1, 1, tzinfo=UTC),
                    "ends_at": datetime(2028, 1, 1, tzinfo=UTC),
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
        }
    )
)


def paid(order_id: str, customer_id: str, amount: str = "5.00", currency: str = "USD") -> Any:
    line = {"sku": "s", "name": "s", "category": "coffee", "quantity": 1, "unit_price": amount}
    data = {
        "order_id": order_id,
        "customer_id": customer_id,
        "currency": currency,
        "items": [line],
        "totals": {"total": {"amount": amount, "currency": currency}},
    }
    model = TOPICS["shop.orders"]["order.paid"].model_validate(data)
    return make_event("order.paid", source="tests/shop", subject=customer_id, data=model, time=T0)


def batch(*events: CloudEvent[Any]) -> list[Incoming]:
    return [
        Incoming("shop.orders", 0, i, e.subject.encode(), encoded(e), (), e)
        for i, e in enumerate(events)
    ]


async def apply(uow: FakeUnitOfWork, *events: CloudEvent[Any]) -> list[str]:
    clock = FixedClock(T0 + timedelta(minutes=1))
    refused = await apply_orders(uow, batch(*events), programmes=PROGRAMMES, clock=clock)
    return [r.error.error_class for r in refused]


def breakdowns(uow: FakeUnitOfWork) -> list[dict[str, Any]]:
    return list(uow.orders.breakdowns.values())


async def test_a_second_payment_of_an_order_under_another_event_id_is_ignored() -> None:
    uow = FakeUnitOfWork()
    assert await apply(uow, paid("o-1", "c-1"), paid("o-1", "c-1", "50.00")) == []
    assert await apply(uow, paid("o-1", "c-1", "70.00")) == []
    assert [w.entry.delta for w in uow.ledger.entries] == [15]  # 5 points and the bonus
    assert list(uow.orders.rows) == [("default", "o-1")]


async def test_refused_payments_write_nothing_and_move_no_counter() -> None:
    uow = FakeUnitOfWork()
    uow.give("default", "c-rich", LEDGER_MAX - 3)
    refused = await apply(uow, paid("o-1", "c-1", currency="EUR"), paid("o-2", "c-rich"))
    assert refused == ["NoEarnRate", "PointsOutOfRange"]
    assert uow.orders.rows == {}
    assert uow.ledger.entries == []
    assert (uow.counters.totals, uow.counters.punches) == ({}, {})


async def test_a_campaign_cap_holds_across_two_orders_of_a_customer_in_one_batch() -> None:
    uow = FakeUnitOfWork()
    assert await apply(uow, paid("o-1", "c-1"), paid("o-2", "c-1"), paid("o-3", "c-2")) == []
    bonuses = [b.get("campaign:welcome", 0) for b in breakdowns(uow)]
    assert bonuses == [10, 5, 10]
    assert uow.counters.usage == {
        ("default", "welcome", "c-1"): 15,
        ("default", "welcome", "c-2"): 10,
    }
    assert uow.counters.totals == {("default", "welcome"): 25}


async def test_every_third_punch_earns_even_inside_one_batch() -> None:
    uow = FakeUnitOfWork()
    await apply(uow, paid("o-1", "c-1"))
    await apply(uow, *(paid(f"o-{n}", "c-1") for n in range(2, 6)))
    rewards = [b.get("punch_card:coffee", 0) for b in breakdowns(uow)]
    assert rewards == [0, 0, 7, 0, 0]
    assert uow.counters.punches == {("default", "coffee", "c-1"): 5}


def new_order(holder: str, customer: str, order_id: str, minutes: int) -> NewOrder:
    return NewOrder(
        shop_id="s-1", order_id=order_id, customer_id=customer, currency="USD",
        paid_event_id=f"e-{order_id}", paid_at=T0 + timedelta(minutes=minutes),
        paid_total=Decimal(5), base_amount=Decimal(5), points=5, credit_minor=0, breakdown={},
        punches=[], release_at=T0, holder_id=holder,
    )  # fmt: skip


def test_each_accounts_first_order_is_its_earliest_by_time_then_id_in_account_order() -> None:
    orders = [
        new_order("s-1", "b", "o-3", 5),
        new_order("s-1", "a", "o-2", 1),
        new_order("coalition", "b", "o-9", 0),
        new_order("s-1", "b", "o-1", 5),  # same time as o-3: the smaller id
        new_order("s-1", "a", "o-0", 2),
    ]
    assert first_orders(orders) == [
        ("coalition", "b", "o-9", "e-o-9", T0),
        ("s-1", "a", "o-2", "e-o-2", T0 + timedelta(minutes=1)),
        ("s-1", "b", "o-1", "e-o-1", T0 + timedelta(minutes=5)),
    ]

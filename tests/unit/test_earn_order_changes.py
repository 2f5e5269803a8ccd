"""Completions, cancellations and refunds decided in one pass over the in-memory unit of work:
each sees what the ones before it did, and what came before its payment waits for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from earn_fakes import FakeUnitOfWork
from support import encoded

from services.earn.handlers import apply_orders, release_due
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
            "pending": {"return_window_days": 2, "completion_timeout_days": 30},
        }
    )
)
KEY = ("default", "o-1")


def event(type_: str, at: datetime, **data: Any) -> CloudEvent[Any]:
    data = {"order_id": "o-1", "customer_id": "c-1"} | data
    model = TOPICS["shop.orders"][type_].model_validate(data)
    return make_event(type_, source="tests/shop", subject="c-1", data=model, time=at)


def paid(at: datetime = T0) -> CloudEvent[Any]:
    line = {"sku": "s", "name": "s", "category": "c", "quantity": 1, "unit_price": "100.00"}
    total = {"total": {"amount": "100.00", "currency": "USD"}}
    return event("order.paid", at, currency="USD", items=[line], totals=total)


def refunded(amount: str, at: datetime) -> CloudEvent[Any]:
    return event("order.refunded", at, refund={"amount": amount, "currency": "USD"}, full=False)


async def apply(uow: FakeUnitOfWork, now: datetime, *events: CloudEvent[Any]) -> list[str]:
    batch = [Incoming("shop.orders", 0, i, b"c-1", encoded(e), (), e) for i, e in enumerate(events)]
    refused = await apply_orders(uow, batch, programmes=PROGRAMMES, clock=FixedClock(now))
    return [r.error.error_class for r in refused]


def pending(uow: FakeUnitOfWork) -> int:
    return uow.accounts.points[("default", "c-1")][1]


async def test_a_refund_before_its_payment_waits_then_applies_with_it() -> None:
    uow = FakeUnitOfWork()
    assert await apply(uow, T0, refunded("40.00", T0)) == []
    assert list(uow.orders.waiting) != []
    assert await apply(uow, T0, paid(T0 - timedelta(minutes=5))) == []
    assert uow.orders.waiting == {}
    order = uow.orders.rows[KEY]
    assert (order.points, order.points_reversed, order.refunded) == (100, 40, Decimal(40))
    assert pending(uow) == 60


async def test_a_refund_and_a_cancellation_in_one_batch_take_everything_back_once() -> None:
    uow = FakeUnitOfWork()
    await apply(uow, T0, paid())
    later = T0 + timedelta(hours=1)
    assert await apply(uow, later, refunded("30.00", later), event("order.cancelled", later)) == []
    order = uow.orders.rows[KEY]
    assert (order.status, order.points_reversed) == ("cancelled", 100)
    assert pending(uow) == 0
    assert uow.ledger.entries == []  # pending points never entered the ledger


async def test_a_completion_inside_the_window_releases_later_and_one_after_it_at_once() -> None:
    uow = FakeUnitOfWork()
    await apply(uow, T0, paid())
    await apply(uow, T0 + timedelta(hours=1), event("order.completed", T0 + timedelta(hours=1)))
    assert uow.orders.rows[KEY].status == "pending"
    assert uow.ledger.entries == []

    late = T0 + timedelta(days=5)
    other = FakeUnitOfWork()
    await apply(other, T0, paid())
    await apply(other, late, event("order.completed", late - timedelta(days=3)))
    assert other.orders.rows[KEY].status == "available"
    assert [(w.entry.entry_id, w.entry.delta) for w in other.ledger.entries] == [
        (f"earn:{other.orders.rows[KEY].paid_event_id}", 100)
    ]
    assert pending(other) == 0


async def test_a_refund_in_another_currency_is_refused_and_changes_nothing() -> None:
    uow = FakeUnitOfWork()
    await apply(uow, T0, paid())
    wrong = event("order.refunded", T0, refund={"amount": "5.00", "currency": "EUR"}, full=False)
    assert await apply(uow, T0, wrong) == ["RefundCurrency"]
    assert uow.orders.rows[KEY].points_reversed == 0
    assert pending(uow) == 100


async def test_the_release_pass_makes_due_orders_available_once() -> None:
    uow = FakeUnitOfWork()
    await apply(uow, T0, paid())
    await apply(uow, T0, refunded("25.00", T0))
    assert await release_due(uow, PROGRAMMES, due_by=T0 + timedelta(days=31)) == 0
    due_by = T0 + timedelta(days=32)  # no completion: the timeout, then the window
    assert await release_due(uow, PROGRAMMES, due_by=due_by) == 1
    assert await release_due(uow, PROGRAMMES, due_by=due_by) == 0
    assert [w.entry.delta for w in uow.ledger.entries] == [75]
    assert uow.orders.rows[KEY].status == "available"
    assert pending(uow) == 0

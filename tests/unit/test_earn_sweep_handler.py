"""The coalition sweep over the in-memory unit of work: a member shop's points (lots keeping
their dates) and its store credit in the coalition's currency move to the coalition's account,
chunk by chunk; credit in another currency stays; a second pass writes nothing; a shop whose
currency the coalition does not earn in is refused and left as it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from earn_fakes import FakeUnitOfWork

from services.earn.domain.ledger import NewEntry
from services.earn.handlers import SweepReport, sweep_members
from services.earn.programme import Programme, parse_programme
from services.earn.programme_book import ProgrammeBook
from services.earn.unit_of_work import Transactions, UnitOfWork
from shared.holders import Holders, Membership

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
JOIN, SWEEP = T0 + timedelta(days=10), T0 + timedelta(days=20)
E1, E2 = T0 + timedelta(days=365), T0 + timedelta(days=400)


def earning_in(currency: str) -> Programme:
    return parse_programme(
        {
            "time_zone": "Asia/Ho_Chi_Minh",
            "currencies": {currency: {"per_amount": Decimal(10_000), "points": 1}},
        }
    )


def book(**currencies: str) -> ProgrammeBook:
    """Each shop's programme earns in the one currency given."""
    found = ProgrammeBook.fixed(earning_in("VND"))
    for shop, currency in currencies.items():
        found.add_version(shop, EPOCH, earning_in(currency))
    return found


def members(*shops: str) -> Holders:
    """Each shop joins coalition c at JOIN."""
    found = Holders()
    for shop in shops:
        found.add(Membership(shop, 1, "c", JOIN))
    return found


def one_at_a_time(uow: FakeUnitOfWork) -> Transactions:
    @asynccontextmanager
    async def begin() -> AsyncIterator[UnitOfWork]:
        yield uow

    return begin


def earned(shop: str, customer: str, n: int, points: int, expires_at: datetime | None) -> NewEntry:
    return NewEntry(
        entry_id=f"{shop}:{customer}:{n}",
        customer_id=customer,
        kind="earned",
        delta=points,
        reason="order.paid",
        order_id=f"o{n}",
        source_event_id=None,
        occurred_at=T0,
        expires_at=expires_at,
        shop_id=shop,
    )


def credit(shop: str, customer: str, currency: str, minor: int) -> NewEntry:
    return NewEntry(
        entry_id=f"{shop}:{customer}:credit:{currency}",
        customer_id=customer,
        kind="earned",
        delta=minor,
        reason="order.paid",
        order_id=None,
        source_event_id=None,
        occurred_at=T0,
        balance_kind="store_credit",
        currency=currency,
        shop_id=shop,
    )


async def test_a_members_points_and_credit_move_to_the_coalition_once_lots_keeping_dates() -> None:
    uow = FakeUnitOfWork()
    await uow.ledger.write(
        [
            earned("n", "x", 1, 100, E1),
            earned("n", "x", 2, 50, E2),
            earned("n", "y", 3, 30, None),
            credit("n", "x", "VND", 5_000),
            credit("n", "x", "USD", 300),
        ]
    )
    programmes = book(c="VND", n="VND")

    report = await sweep_members(one_at_a_time(uow), members("n"), programmes, now=SWEEP, chunk=1)

    assert report == SweepReport(balances=3, points=180, refused=())
    points = uow.accounts.points
    assert (points[("n", "x")][0], points[("n", "y")][0]) == (0, 0)
    assert (points[("c", "x")][0], points[("c", "y")][0]) == (150, 30)
    assert uow.accounts.credit[("c", "x", "VND")][0] == 5_000
    assert uow.accounts.credit[("n", "x", "VND")][0] == 0
    assert uow.accounts.credit[("n", "x", "USD")][0] == 300  # the coalition earns no USD
    into = [
        (w.entry.delta, w.entry.expires_at, w.entry.at_shop)
        for w in uow.ledger.entries
        if w.entry.shop_id == "c" and w.entry.customer_id == "x" and w.entry.currency is None
    ]
    assert into == [(100, E1, "n"), (50, E2, "n")]
    written = len(uow.ledger.entries)

    again = await sweep_members(one_at_a_time(uow), members("n"), programmes, now=SWEEP, chunk=1)

    assert again == SweepReport(0, 0, ())
    assert len(uow.ledger.entries) == written


async def test_a_shop_whose_currency_the_coalition_does_not_earn_in_is_left_as_it_is() -> None:
    uow = FakeUnitOfWork()
    await uow.ledger.write([earned("m", "x", 1, 40, E1)])

    report = await sweep_members(
        one_at_a_time(uow), members("m"), book(c="VND", m="USD"), now=SWEEP, chunk=10
    )

    assert report == SweepReport(0, 0, ("m",))
    assert uow.accounts.points[("m", "x")][0] == 40
    assert ("c", "x") not in uow.accounts.points

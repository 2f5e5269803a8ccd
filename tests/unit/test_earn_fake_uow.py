"""The in-memory unit of work keeps the ledger's own rules: running balances per account in the
order entries are given, and an id written once only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from earn_fakes import DuplicateKey, FakeUnitOfWork

from services.earn.domain.ledger import NewEntry
from services.earn.unit_of_work import UnitOfWork

AT = datetime(2027, 3, 1, tzinfo=UTC)


def entry(entry_id: str, delta: int, *, currency: str | None = None) -> NewEntry:
    return NewEntry(
        entry_id=entry_id,
        customer_id="c",
        kind="earned" if delta > 0 else "redeemed",
        delta=delta,
        reason="r",
        order_id=None,
        source_event_id=None,
        occurred_at=AT,
        balance_kind="points" if currency is None else "store_credit",
        currency=currency,
    )


async def test_each_entry_carries_the_running_balance_of_its_own_account() -> None:
    uow: UnitOfWork = FakeUnitOfWork()
    written = await uow.ledger.write(
        [entry("a", 10), entry("b", 500, currency="USD"), entry("c", -4), entry("d", 7)]
    )
    assert [w.balance_after for w in written] == [10, 500, 6, 13]
    points = await uow.accounts.read_points("default", "c")
    assert points is not None
    assert (points.points_balance, points.lifetime_earned) == (13, 17)
    assert await uow.accounts.read_credit("default", "c") == [("USD", 500, 0)]


async def test_an_entry_id_is_written_once_and_a_refused_write_moves_no_balance() -> None:
    uow = FakeUnitOfWork()
    await uow.ledger.write([entry("a", 10)])
    with pytest.raises(DuplicateKey):
        await uow.ledger.write([entry("b", 5), entry("a", 10)])
    assert uow.accounts.points[("default", "c")][0] == 10
    assert [w.entry.entry_id for w in uow.ledger.entries] == ["a"]


async def test_a_customer_never_credited_has_no_account_to_lock() -> None:
    uow = FakeUnitOfWork()
    assert await uow.accounts.lock_points("default", "nobody") is None
    assert await uow.accounts.lock_credit("default", "nobody", "USD") is None
    uow.credit("default", "c", "EUR", 250, pending=40)
    credit = await uow.accounts.lock_credit("default", "c", "EUR")
    assert credit is not None
    assert (credit.balance_minor, credit.pending_minor) == (250, 40)

"""Operators' corrections over the in-memory unit of work: deductions keep the balance from
going below zero unless forced, and a bulk grant credits each customer once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from earn_fakes import DuplicateKey, FakeUnitOfWork

from services.earn.handlers import AdjustPoints, adjust_points, grant_points_in_bulk
from services.earn.refusals import Conflict, NotFound

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
SHOP = "shop-a"


def deduct(points: int, *, force: bool = False) -> AdjustPoints:
    return AdjustPoints(SHOP, "adjust:k", "c-1", -points, "goodwill undone", force)


async def test_a_deduction_below_zero_is_refused_unless_forced() -> None:
    uow = FakeUnitOfWork()
    uow.give(SHOP, "c-1", 30)
    with pytest.raises(Conflict) as refused:
        await adjust_points(uow, deduct(50), now=NOW)
    assert refused.value.code == "insufficient_points"
    assert uow.ledger.entries == []
    written = await adjust_points(uow, deduct(50, force=True), now=NOW)
    assert written.balance_after == -20
    assert written.entry.entry_id == "shop:6:shop-a:adjust:k"


async def test_a_deduction_for_a_customer_never_credited_is_not_found() -> None:
    with pytest.raises(NotFound):
        await adjust_points(FakeUnitOfWork(), deduct(1), now=NOW)


async def test_a_bulk_grant_credits_each_customer_once() -> None:
    uow = FakeUnitOfWork()
    grants = [("c-1", 10), ("c-2", 20)]
    written = await grant_points_in_bulk(uow, SHOP, "b-1", grants, reason="launch", now=NOW)
    assert [(w.entry.customer_id, w.balance_after) for w in written] == grants
    with pytest.raises(DuplicateKey):  # the entry ids derive from the batch and the customer
        await grant_points_in_bulk(uow, SHOP, "b-1", grants, reason="launch", now=NOW)
    assert [uow.accounts.points[(SHOP, c)][0] for c, _ in grants] == [10, 20]

"""The action scenarios of the unit tests, on both units of work: the in-memory one and
PostgreSQL's, each test in a transaction rolled back at its end. What a customer ends up with
must not depend on which one ran, or the fake has drifted from the SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from earn_actions_support import (
    BOOK,
    T0,
    coalition,
    customers,
    engagement,
    event,
    orders,
    referral,
    signed_up,
)
from earn_fakes import FakeUnitOfWork
from earn_support import earn_database
from infrastructure import Endpoints
from support import order_paid

from services.earn.adapters.unit_of_work import PostgresUnitOfWork
from services.earn.handlers import award_birthdays
from services.earn.unit_of_work import UnitOfWork
from shared.events import CloudEvent


@pytest.fixture(scope="module")
async def database(infrastructure: Endpoints) -> AsyncIterator[str]:
    async with earn_database(infrastructure, "loyalty_uow") as url:
        yield url


@pytest.fixture(params=["memory", "postgres"])
async def uow(request: pytest.FixtureRequest, database: str) -> AsyncIterator[UnitOfWork]:
    if request.param == "memory":
        yield FakeUnitOfWork()
        return
    conn = await asyncpg.connect(database)
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield PostgresUnitOfWork(conn)
    finally:
        await transaction.rollback()
        await conn.close()


def the_same(uow: UnitOfWork) -> Callable[[], AbstractAsyncContextManager[UnitOfWork]]:
    """A pass's transactions, all the test's one."""

    @asynccontextmanager
    async def begin() -> AsyncIterator[UnitOfWork]:
        yield uow

    return begin


def paid_at(shop: str, customer: str, total: str, at: datetime = T0) -> CloudEvent[Any]:
    paid = order_paid(customer, total=total, at=at)
    return paid.model_copy(update={"data": paid.data.model_copy(update={"shop_id": shop})})


async def points(uow: UnitOfWork, shop: str, customer: str) -> int | None:
    account = await uow.accounts.read_points(shop, customer)
    return None if account is None else account.points_balance


async def test_a_sign_up_earns_once_however_often_it_is_delivered(uow: UnitOfWork) -> None:
    first = signed_up("x")
    await customers(uow, first, first)
    await customers(uow, first)

    assert await points(uow, "default", "x") == 50


async def test_reviews_beyond_the_weekly_limit_are_decided_with_no_points(uow: UnitOfWork) -> None:
    reviews = [
        event("review.posted", "x", T0 + timedelta(hours=i), review_id=f"v{i}", rating=5)
        for i in range(3)
    ]
    await engagement(uow, *reviews)
    await engagement(uow, *reviews)

    assert await points(uow, "default", "x") == 40
    asked = [("default", f"review:v{i}") for i in range(4)]
    assert await uow.awards.decided(asked) == set(asked[:3])


async def test_a_first_paid_order_rewards_a_known_referral_once(uow: UnitOfWork) -> None:
    await customers(uow, signed_up("new", referrer_id="old"))
    first, second = paid_at("default", "new", "100000"), paid_at("default", "new", "50000")
    await orders(uow, first, second)
    await orders(uow, first, second, paid_at("default", "new", "10000"))

    assert await points(uow, "default", "old") == 200
    assert await points(uow, "default", "new") == 50 + 10 + 5 + 1 + 100


async def test_a_referral_known_after_the_first_order_is_rewarded_once(uow: UnitOfWork) -> None:
    await orders(uow, paid_at("default", "new", "100000"))
    await engagement(uow, referral("old", "new"), referral("old", "new"))
    await engagement(uow, referral("other", "new"))

    assert await points(uow, "default", "old") == 200
    assert await points(uow, "default", "other") is None
    assert await points(uow, "default", "new") == 10 + 100


async def test_a_coalition_members_referral_is_the_coalition_accounts(uow: UnitOfWork) -> None:
    await customers(uow, signed_up("new", referrer_id="old", shop_id="a"), holders=coalition())
    await orders(uow, paid_at("a", "new", "100000"), holders=coalition())

    assert await points(uow, "c", "old") == 200
    assert await points(uow, "c", "new") == 50 + 10 + 100
    assert await points(uow, "a", "old") is None
    assert await uow.customers.profiles([("a", "new")]) == {}


async def test_a_birthday_is_awarded_once_a_year(uow: UnitOfWork) -> None:
    await customers(uow, signed_up("x", birthday="1990-12-03", time_zone="Asia/Ho_Chi_Minh"))
    passes = the_same(uow)

    before, began = datetime(2026, 12, 2, 16, 59, tzinfo=UTC), datetime(2026, 12, 2, 17, tzinfo=UTC)
    assert await award_birthdays(passes, BOOK, now=before, chunk=10) == 0
    assert await award_birthdays(passes, BOOK, now=began, chunk=10) == 1
    assert await award_birthdays(passes, BOOK, now=began, chunk=10) == 0

    assert await points(uow, "default", "x") == 50 + 100

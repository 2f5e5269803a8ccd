"""The action scenarios of the unit tests, on both units of work: the in-memory one and
PostgreSQL's, each test in a transaction rolled back at its end. What a customer ends up with
must not depend on which one ran, or the fake has drifted from the SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from earn_fakes import FakeUnitOfWork
from infrastructure import Endpoints
from support import database_of_its_own, encoded, order_paid

import services.earn
from services.earn.adapters.unit_of_work import PostgresUnitOfWork
from services.earn.handlers import apply_customers, apply_engagement, apply_orders, award_birthdays
from services.earn.programme import parse_programme
from services.earn.programme_book import ProgrammeBook
from services.earn.unit_of_work import UnitOfWork
from shared.clock import FixedClock
from shared.consumer import Incoming
from shared.db import apply_migrations
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS
from shared.holders import Holders, Membership
from shared.runtime import MESSAGING_MIGRATIONS

EARN_MIGRATIONS = Path(services.earn.__file__).parent / "migrations"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Wednesday 2 December 2026, 10:00 in Ho Chi Minh City.
T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
PROGRAMME = parse_programme(
    {
        "time_zone": "Asia/Ho_Chi_Minh",
        "currencies": {"VND": {"per_amount": Decimal(10_000), "points": 1}},
        "actions": {
            "signup": {"points": 50},
            "birthday": 100,
            "review": {"points": 20, "limit": 2, "per": "week"},
            "referral": {"referrer_points": 200, "referred_points": 100, "limit": 1, "per": "year"},
        },
    }
)
BOOK = ProgrammeBook(lambda: PROGRAMME)
for _shop in ("default", "a", "c"):
    BOOK.add_version(_shop, EPOCH, PROGRAMME)


@pytest.fixture(scope="module")
async def database(infrastructure: Endpoints) -> AsyncIterator[str]:
    async with database_of_its_own(infrastructure.database_url, "loyalty_uow") as url:
        conn = await asyncpg.connect(url)
        try:
            components = [("messaging", MESSAGING_MIGRATIONS), ("earn", EARN_MIGRATIONS)]
            await apply_migrations(conn, "earn", components)
        finally:
            await conn.close()
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


def event(type_: str, customer: str, at: datetime = T0, **data: Any) -> CloudEvent[Any]:
    topic = "shop.customers" if type_.startswith("customer.") else "shop.engagement"
    model = TOPICS[topic][type_]
    return make_event(
        type_,
        source="tests/shop",
        subject=customer,
        data=model.model_validate({"customer_id": customer, **data}),
        time=at,
    )


def signed_up(customer: str, at: datetime = T0, **data: Any) -> CloudEvent[Any]:
    profile = {"email": "a@example.com", "name": "An", "locale": "vi-VN", "time_zone": "UTC"}
    return event("customer.signed_up", customer, at, **(profile | data))


def referral(referrer: str, referred: str) -> CloudEvent[Any]:
    return event(
        "referral.completed", referrer, referral_id=f"r-{referred}", referrer_id=referrer,
        referred_id=referred,
    )  # fmt: skip


def paid_at(shop: str, customer: str, total: str, at: datetime = T0) -> CloudEvent[Any]:
    paid = order_paid(customer, total=total, at=at)
    return paid.model_copy(update={"data": paid.data.model_copy(update={"shop_id": shop})})


def batch(topic: str, events: list[CloudEvent[Any]]) -> list[Incoming]:
    return [
        Incoming(topic, 0, i, e.subject.encode(), encoded(e), (), e) for i, e in enumerate(events)
    ]


def coalition() -> Holders:
    """Shop a is a member of coalition c."""
    found = Holders()
    found.add(Membership("a", 1, "c", EPOCH))
    return found


async def customers(
    uow: UnitOfWork, *events: CloudEvent[Any], holders: Holders | None = None
) -> None:
    refused = await apply_customers(
        uow, batch("shop.customers", list(events)), programmes=BOOK, holders=holders
    )
    assert refused == []


async def engagement(uow: UnitOfWork, *events: CloudEvent[Any]) -> None:
    refused = await apply_engagement(uow, batch("shop.engagement", list(events)), programmes=BOOK)
    assert refused == []


async def orders(uow: UnitOfWork, *events: CloudEvent[Any], holders: Holders | None = None) -> None:
    clock = FixedClock(T0 + timedelta(minutes=5))
    refused = await apply_orders(
        uow, batch("shop.orders", list(events)), programmes=BOOK, clock=clock, holders=holders
    )
    assert refused == []


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

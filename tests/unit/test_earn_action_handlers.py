"""Points for actions over the in-memory unit of work: sign-ups and reviews within their limits,
referrals rewarded once on both sides whichever half comes last (the first paid order joins the
orders pass), a coalition's referrals on its account naming the member shop, birthdays once a
year."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta

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
from support import order_paid

from services.earn.handlers import award_birthdays
from services.earn.unit_of_work import UnitOfWork
from shared.holders import shop_scoped


def entries(uow: FakeUnitOfWork) -> list[tuple[str, str, str, int, str | None]]:
    return [
        (e.entry.shop_id, e.entry.entry_id, e.entry.customer_id, e.entry.delta, e.entry.at_shop)
        for e in uow.ledger.entries
    ]


async def test_a_sign_up_earns_once_however_often_it_is_delivered() -> None:
    uow = FakeUnitOfWork()
    first = signed_up("x")
    await customers(uow, first, first)
    await customers(uow, first)

    assert entries(uow) == [("default", "signup:x", "x", 50, None)]
    assert uow.ledger.events["signup:x"] == 1


async def test_reviews_beyond_the_weekly_limit_are_decided_with_no_points() -> None:
    uow = FakeUnitOfWork()
    reviews = [
        event("review.posted", "x", T0 + timedelta(hours=i), review_id=f"v{i}", rating=5)
        for i in range(3)
    ]
    await engagement(uow, *reviews)
    await engagement(uow, *reviews)

    assert [e[1] for e in entries(uow)] == ["review:v0", "review:v1"]
    assert uow.awards.decisions[("default", "review:v2")].points == 0
    assert uow.awards.counters == {("default", "review", "x", "week:2026-11-30"): 2}


async def test_a_first_paid_order_rewards_a_known_referral_in_the_orders_pass() -> None:
    uow = FakeUnitOfWork()
    await customers(uow, signed_up("new", referrer_id="old"))
    first = order_paid("new", total="100000", at=T0)
    second = order_paid("new", total="50000", at=T0 + timedelta(minutes=1))
    await orders(uow, first, second)
    later = order_paid("new", total="10000", at=T0)
    await orders(uow, first, second, later)

    assert sorted(e[1:4] for e in entries(uow)) == sorted(
        [
            ("signup:new", "new", 50),
            (f"earn:{first.id}", "new", 10),
            (f"earn:{second.id}", "new", 5),
            ("referral:new:referrer", "old", 200),
            ("referral:new:referred", "new", 100),
            (f"earn:{later.id}", "new", 1),
        ]
    )
    assert uow.customers.rows[("default", "new")].referral_rewarded
    assert uow.awards.decisions[("default", "referral:new:referrer")].source_event_id == first.id


async def test_a_referral_known_after_the_first_order_is_rewarded_once_then() -> None:
    uow = FakeUnitOfWork()
    await orders(uow, order_paid("new", total="100000", at=T0))
    completed = referral("old", "new")
    await engagement(uow, completed, completed)
    await engagement(uow, referral("other", "new"))  # the first referrer known wins

    rewarded = [e[1:4] for e in entries(uow) if e[1].startswith("referral:")]
    assert rewarded == [
        ("referral:new:referrer", "old", 200),
        ("referral:new:referred", "new", 100),
    ]


async def test_the_referrer_limit_leaves_the_referred_customers_reward() -> None:
    uow = FakeUnitOfWork()
    await orders(
        uow, order_paid("n1", total="10000", at=T0), order_paid("n2", total="10000", at=T0)
    )
    await engagement(uow, referral("old", "n1"), referral("old", "n2"))

    rewarded = {e[1]: e[3] for e in entries(uow) if e[1].startswith("referral:")}
    assert rewarded == {
        "referral:n1:referrer": 200,
        "referral:n1:referred": 100,
        "referral:n2:referred": 100,
    }
    assert uow.awards.decisions[("default", "referral:n2:referrer")].points == 0


async def test_a_coalition_members_referral_is_the_coalition_accounts_naming_the_member() -> None:
    uow = FakeUnitOfWork()
    await customers(uow, signed_up("new", referrer_id="old", shop_id="a"), holders=coalition())
    paid = order_paid("new", total="100000", at=T0)
    paid = paid.model_copy(update={"data": paid.data.model_copy(update={"shop_id": "a"})})
    await orders(uow, paid, holders=coalition())

    rewarded = [e for e in entries(uow) if "referral:" in e[1]]
    assert rewarded == [
        ("c", shop_scoped("c", "referral:new:referrer"), "old", 200, "a"),
        ("c", shop_scoped("c", "referral:new:referred"), "new", 100, "a"),
    ]
    assert ("a", "new") not in uow.customers.rows
    assert uow.customers.rows[("c", "new")].referral_rewarded


async def test_a_birthday_is_awarded_once_a_year_in_the_customers_zone() -> None:
    uow = FakeUnitOfWork()
    await customers(uow, signed_up("x", birthday="1990-12-03", time_zone="Asia/Ho_Chi_Minh"))

    @asynccontextmanager
    async def transactions() -> AsyncIterator[UnitOfWork]:
        yield uow

    # 3 December begins at 17:00 UTC on the 2nd in Ho Chi Minh City.
    before = datetime(2026, 12, 2, 16, 59, tzinfo=UTC)
    assert await award_birthdays(transactions, BOOK, now=before, chunk=10) == 0
    began = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
    assert await award_birthdays(transactions, BOOK, now=began, chunk=10) == 1
    assert await award_birthdays(transactions, BOOK, now=began, chunk=10) == 0

    assert [e[1:4] for e in entries(uow)][-1] == ("birthday:x:2026", "x", 100)
    assert uow.customers.rows[("default", "x")].next_birthday_at == datetime(
        2027, 12, 2, 17, 0, tzinfo=UTC
    )
    assert uow.customers.rows[("default", "x")].birthday == date(1990, 12, 3)

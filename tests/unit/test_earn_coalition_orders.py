"""shop.orders of a coalition's member shops, over the in-memory unit of work: one account held
by the coalition under its programme, entries naming the member shop, a refund after leaving
taken back from the account that earned, and a replay that finds the same balances."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from earn_fakes import FakeUnitOfWork
from support import encoded, order_paid, order_refunded

from services.earn.handlers import apply_orders
from services.earn.programme import parse_programme
from services.earn.programme_book import ProgrammeBook
from shared.clock import FixedClock
from shared.consumer import Incoming
from shared.events import CloudEvent
from shared.holders import Holders, Membership

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
LEFT = T0 + timedelta(hours=1)  # A leaves C


def programme(points: int, **more: Any) -> Any:
    currencies = {"VND": {"per_amount": Decimal(10000), "points": points}}
    return parse_programme({"currencies": currencies, **more})


PROGRAMMES = ProgrammeBook(lambda: programme(1))
for shop, points in (("a", 1), ("b", 1), ("n", 1)):
    PROGRAMMES.add_version(shop, EPOCH, programme(points))
# Only the coalition sells a membership: the support's orders buy one unit of SKU-1.
C_SELLS = [{"sku": "SKU-1", "tier": "gold", "months": 12}]
PROGRAMMES.add_version("c", EPOCH, programme(3, memberships=C_SELLS))


def holders() -> Holders:
    found = Holders()
    found.add(Membership("a", 1, "c", EPOCH))
    found.add(Membership("b", 1, "c", EPOCH))
    found.add(Membership("a", 2, None, LEFT))
    return found


def at(shop: str, event: CloudEvent[Any]) -> CloudEvent[Any]:
    return event.model_copy(update={"data": event.data.model_copy(update={"shop_id": shop})})


async def apply(uow: FakeUnitOfWork, events: list[CloudEvent[Any]], now: datetime) -> list[str]:
    batch = [
        Incoming("shop.orders", 0, i, e.subject.encode(), encoded(e), (), e)
        for i, e in enumerate(events)
    ]
    refused = await apply_orders(
        uow, batch, programmes=PROGRAMMES, clock=FixedClock(now), holders=holders()
    )
    return [r.error.error_class for r in refused]


def story() -> list[CloudEvent[Any]]:
    return [
        at("a", order_paid("x", total="100000", order_id="o-1", at=T0)),
        at("b", order_paid("x", total="200000", order_id="o-1", at=T0)),
        at("n", order_paid("x", total="100000", order_id="o-2", at=T0)),
        at("a", order_refunded("x", "o-1", at=LEFT + timedelta(minutes=1))),
        at("a", order_paid("x", total="100000", order_id="o-3", at=LEFT + timedelta(minutes=2))),
    ]


def balances(uow: FakeUnitOfWork) -> dict[tuple[str, str], int]:
    return {k: v[0] for k, v in uow.accounts.points.items()}


async def test_members_earn_into_the_coalitions_account_under_its_programme() -> None:
    uow = FakeUnitOfWork()

    assert await apply(uow, story()[:3], T0 + timedelta(minutes=1)) == []

    assert balances(uow) == {("c", "x"): 90, ("n", "x"): 10}
    entries = sorted((w.entry.shop_id, w.entry.at_shop, w.entry.delta) for w in uow.ledger.entries)
    assert entries == [("c", "a", 30), ("c", "b", 60), ("n", None, 10)]


async def test_a_refund_after_leaving_is_taken_from_the_account_that_earned() -> None:
    uow = FakeUnitOfWork()

    assert await apply(uow, story(), LEFT + timedelta(minutes=3)) == []

    # o-1 at A reversed from C; o-3, paid after A left, earns at A under A's own programme.
    assert balances(uow) == {("c", "x"): 60, ("n", "x"): 10, ("a", "x"): 10}
    reversed_ = [w.entry for w in uow.ledger.entries if w.entry.kind == "reversed"]
    assert [(e.shop_id, e.at_shop, e.delta) for e in reversed_] == [("c", "a", -30)]


async def test_a_replay_a_year_later_finds_the_same_balances() -> None:
    live, replay = FakeUnitOfWork(), FakeUnitOfWork()
    for event in story():
        await apply(live, [event], event.time + timedelta(seconds=1))

    await apply(replay, story(), LEFT + timedelta(days=365))

    assert balances(replay) == balances(live)


async def test_an_order_naming_a_coalition_as_its_shop_is_refused() -> None:
    uow = FakeUnitOfWork()

    refused = await apply(uow, [at("c", order_paid("x", total="100000", at=T0))], T0)

    assert refused == ["UnknownShop"]
    assert balances(uow) == {}


async def test_memberships_bought_at_a_member_are_announced_for_the_coalitions_account() -> None:
    uow = FakeUnitOfWork()

    assert await apply(uow, story()[:4], LEFT + timedelta(minutes=3)) == []

    announced = [json.loads(m.value) for m in uow.outbox.messages]
    memberships = [
        (e["type"], e["data"]["shop_id"], e["data"].get("at_shop"), e["data"]["order_id"])
        for e in announced
        if e["type"].startswith("membership.")
    ]
    assert memberships == [
        ("membership.purchased", "c", "a", "o-1"),
        ("membership.purchased", "c", "b", "o-1"),
        ("membership.cancelled", "c", "a", "o-1"),  # refunded at A after it left
    ]

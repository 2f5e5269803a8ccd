"""The action scenarios' set-up: one programme, the customers' and engagement events, and a pass
of each handler; shared by the unit tests on the in-memory unit of work, their run on
PostgreSQL's, and the action tests through Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from support import encoded

from services.earn.handlers import apply_customers, apply_engagement, apply_orders
from services.earn.programme import parse_programme
from services.earn.programme_book import ProgrammeBook
from services.earn.unit_of_work import UnitOfWork
from shared.clock import FixedClock
from shared.consumer import Incoming
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS
from shared.holders import Holders, Membership

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


def coalition() -> Holders:
    """Shop a is a member of coalition c."""
    found = Holders()
    found.add(Membership("a", 1, "c", EPOCH))
    return found


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


def referral(referrer: str, referred: str, **data: Any) -> CloudEvent[Any]:
    return event(
        "referral.completed", referrer, referral_id=f"r-{referred}", referrer_id=referrer,
        referred_id=referred, **data,
    )  # fmt: skip


def batch(topic: str, events: list[CloudEvent[Any]]) -> list[Incoming]:
    return [
        Incoming(topic, 0, i, e.subject.encode(), encoded(e), (), e) for i, e in enumerate(events)
    ]


async def customers(
    uow: UnitOfWork, *events: CloudEvent[Any], holders: Holders | None = None
) -> None:
    refused = await apply_customers(
        uow, batch("shop.customers", list(events)), programmes=BOOK, holders=holders
    )
    assert refused == []


async def engagement(
    uow: UnitOfWork, *events: CloudEvent[Any], holders: Holders | None = None
) -> None:
    refused = await apply_engagement(
        uow, batch("shop.engagement", list(events)), programmes=BOOK, holders=holders
    )
    assert refused == []


async def orders(uow: UnitOfWork, *events: CloudEvent[Any], holders: Holders | None = None) -> None:
    refused = await apply_orders(
        uow,
        batch("shop.orders", list(events)),
        programmes=BOOK,
        clock=FixedClock(T0 + timedelta(minutes=5)),
        holders=holders,
    )
    assert refused == []

"""Points for actions on the real broker and database: sign-up, reviews within their limit,
shares, newsletters, referrals on both sides after the first paid order (whichever comes
first), and birthdays awarded once however many replicas run the pass."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from earn_actions_support import T0, event, signed_up
from earn_support import earn_of_its_own
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_paid, unique

from services.earn.adapters.customers import first_orders
from services.earn.adapters.unit_of_work import transactions
from services.earn.handlers import award_birthdays
from services.earn.programme import Programme, parse_programme
from services.earn.programme_book import ProgrammeBook
from shared.clock import FixedClock
from shared.events import CloudEvent

PROGRAMME = parse_programme(
    {
        "time_zone": "Asia/Ho_Chi_Minh",
        "currencies": {"VND": {"per_amount": Decimal(10_000), "points": 1}},
        "actions": {
            "signup": {"points": 50},
            "birthday": 100,
            "review": {"points": 20, "limit": 2, "per": "week"},
            "social_share": {"points": 5, "limit": 1, "per": "day"},
            "newsletter": {"points": 30},
            "referral": {
                "referrer_points": 200,
                "referred_points": 100,
                "limit": 1,
                "per": "year",
            },
        },
        "expiry": {"mode": "after_months", "months": 12},
    }
)


@dataclass
class Earn:
    db: asyncpg.Pool
    producer: AIOKafkaProducer
    bootstrap_servers: str
    programme: Programme

    async def publish(self, topic: str, *events: CloudEvent[Any]) -> None:
        for one in events:
            await self.producer.send_and_wait(topic, encoded(one), key=one.subject.encode())

    async def entries(self, customer: str) -> list[tuple[str, str, int]]:
        rows = await self.db.fetch(
            "SELECT entry_id, reason, delta FROM earn.ledger WHERE customer_id = $1 ORDER BY seq",
            customer,
        )
        return [(r["entry_id"], r["reason"], r["delta"]) for r in rows]


@pytest.fixture(scope="module")
async def earn(infrastructure: Endpoints, producer: AIOKafkaProducer) -> AsyncIterator[Earn]:
    async with earn_of_its_own(
        infrastructure,
        "actions",
        programme=PROGRAMME,
        clock=FixedClock(T0),
        birthday_interval_s=3600,  # the tests run the birthday pass with their own times
    ) as own:
        pool = await asyncpg.create_pool(own.database_url, min_size=1, max_size=4)
        try:
            yield Earn(pool, producer, infrastructure.kafka_bootstrap, PROGRAMME)
        finally:
            await pool.close()


def review(customer: str, review_id: str, at: datetime = T0) -> CloudEvent[Any]:
    return event("review.posted", customer, at, review_id=review_id, rating=5)


async def test_actions_earn_within_their_limits_with_entries_and_events(earn: Earn) -> None:
    customer = unique("c")
    r1, r2, r3 = unique("r"), unique("r"), unique("r")
    next_week = T0 + timedelta(days=5)  # Monday 7 December, a new week
    async with TopicTail(earn.bootstrap_servers, "loyalty.points") as points:
        await earn.publish("shop.customers", signed_up(customer))
        await earn.publish(
            "shop.engagement",
            review(customer, r1),
            review(customer, r2),
            review(customer, r3),  # the week's third review: over the limit of 2
            review(customer, r1),  # the same review again, under another event id
            review(customer, unique("r"), next_week),
            event(
                "social.shared",
                customer,
                share_id=unique("s"),
                network="zalo",
                url="https://s.example/1",
            ),
            event(
                "social.shared",
                customer,
                share_id=unique("s"),
                network="x",
                url="https://s.example/2",
            ),
            event("newsletter.subscribed", customer, subscription_id=unique("n")),
        )
        entries = await eventually(lambda: earn.entries(customer), lambda e: len(e) == 6)
        published = await points.collect(lambda r: r.key == customer.encode(), count=6)

    # shop.customers and shop.engagement are consumed side by side: compare without order.
    assert sorted((reason, delta) for _, reason, delta in entries) == [
        ("newsletter", 30),
        ("review", 20),
        ("review", 20),
        ("review", 20),
        ("signup", 50),
        ("social_share", 5),
    ]
    ids = {entry_id for entry_id, _, _ in entries}
    assert {f"signup:{customer}", f"review:{r1}", f"review:{r2}"} <= ids
    assert f"review:{r3}" not in ids
    bodies = [json.loads(r.value) for r in published]
    assert {b["type"] for b in bodies} == {"points.earned"}
    assert {b["id"] for b in bodies} == ids
    assert max(b["data"]["balance_after"] for b in bodies) == 145
    # Points for actions expire like any earning: 12 months after.
    signup = next(b for b in bodies if b["data"]["reason"] == "signup")
    assert datetime.fromisoformat(signup["data"]["expires_at"]) == T0.replace(year=2027)
    refused = await earn.db.fetchval(
        "SELECT points FROM earn.action_awards WHERE award_id = $1", f"review:{r3}"
    )
    assert refused == 0


async def referral_entries(earn: Earn, referrer: str, referred: str) -> list[tuple[str, int]]:
    return [(e[0], e[2]) for c in (referrer, referred) for e in await earn.entries(c)]


async def test_a_referral_rewards_both_sides_once_the_first_order_is_paid(earn: Earn) -> None:
    referrer, referred = unique("c"), unique("c")
    await earn.publish("shop.customers", signed_up(referred, referrer_id=referrer))
    await eventually(lambda: earn.entries(referred), lambda e: len(e) == 1)  # sign-up only
    first, second = (
        order_paid(referred, total="100000", at=T0),
        order_paid(referred, total="50000", at=T0),
    )
    await earn.publish("shop.orders", first, second)

    expected = [
        (f"referral:{referred}:referrer", 200),
        (f"signup:{referred}", 50),
        (f"earn:{first.id}", 10),
        (f"earn:{second.id}", 5),
        (f"referral:{referred}:referred", 100),
    ]
    found = await eventually(
        lambda: referral_entries(earn, referrer, referred),
        lambda e: sorted(e) == sorted(expected),
    )
    assert sorted(found) == sorted(expected)


async def test_a_referral_known_after_the_first_order_is_rewarded_then(earn: Earn) -> None:
    referrer, referred = unique("c"), unique("c")
    order = order_paid(referred, total="100000", at=T0)
    await earn.publish("shop.orders", order)
    await eventually(lambda: earn.entries(referred), lambda e: len(e) == 1)
    completed = event(
        "referral.completed",
        referrer,
        referral_id=unique("ref"),
        referrer_id=referrer,
        referred_id=referred,
    )
    await earn.publish("shop.engagement", completed, completed)

    found = await eventually(
        lambda: referral_entries(earn, referrer, referred), lambda e: len(e) == 3
    )
    assert sorted(found) == sorted(
        [
            (f"referral:{referred}:referrer", 200),
            (f"earn:{order.id}", 10),
            (f"referral:{referred}:referred", 100),
        ]
    )


async def test_the_referrer_limit_leaves_the_referred_customers_reward(earn: Earn) -> None:
    referrer = unique("c")
    friends = [unique("c"), unique("c")]
    for friend in friends:  # one after the other: the first friend's referral counts first
        await earn.publish("shop.customers", signed_up(friend, referrer_id=referrer))
        await earn.publish("shop.orders", order_paid(friend, total="10000", at=T0))
        await eventually(partial(earn.entries, friend), lambda e: len(e) == 3)
    # One referral a year is rewarded to the referrer; both friends earn theirs.
    assert [(e[0], e[2]) for e in await earn.entries(referrer)] == [
        (f"referral:{friends[0]}:referrer", 200)
    ]
    for friend in friends:
        assert (f"referral:{friend}:referred", "referral", 100) in await earn.entries(friend)


def scans_of(plan: Any, relation: str) -> list[str]:
    """The kinds of scan of `relation` in an EXPLAIN (FORMAT JSON) plan."""
    found = []
    if isinstance(plan, dict):
        if plan.get("Relation Name") == relation and "Scan" in plan.get("Node Type", ""):
            found.append(plan["Node Type"])
        for value in plan.values():
            found += scans_of(value, relation)
    elif isinstance(plan, list):
        for value in plan:
            found += scans_of(value, relation)
    return found


@pytest.mark.parametrize(
    "holders",
    [["default"], ["default", "other"]],
    ids=["one shop", "two shops"],
)
async def test_paid_orders_find_their_customers_by_key_not_by_reading_them_all(
    earn: Earn, holders: list[str]
) -> None:
    """The first-order lookup must be able to use the customers' key: when it could not
    (its ids compared in another collation), every batch read the whole table."""
    at = datetime(2026, 1, 2, tzinfo=UTC)
    sql, args = first_orders([(h, "c", "o", "e", at) for h in holders])
    async with earn.db.acquire() as conn:
        await conn.execute("SET enable_seqscan = off")  # a scan only where no index can serve
        try:
            plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
        finally:
            await conn.execute("RESET enable_seqscan")

    assert scans_of(plan, "customers")
    assert "Seq Scan" not in scans_of(plan, "customers")


async def test_birthdays_are_awarded_once_a_year_by_concurrent_passes(earn: Earn) -> None:
    hcm, new_york, leap = unique("c"), unique("c"), unique("c")
    await earn.publish(
        "shop.customers",
        signed_up(hcm, birthday="1990-12-10", time_zone="Asia/Ho_Chi_Minh"),
        signed_up(new_york, birthday="1985-12-10", time_zone="America/New_York"),
        signed_up(leap, birthday="2000-02-29", time_zone="UTC"),
    )
    await eventually(lambda: earn.entries(leap), lambda e: len(e) == 1)

    # 10 December 00:30 in Ho Chi Minh City is still 9 December in New York.
    first = datetime(2026, 12, 9, 17, 30, tzinfo=UTC)
    passes = [
        award_birthdays(
            transactions(earn.db), ProgrammeBook.fixed(earn.programme), now=first, chunk=1
        )
        for _ in range(3)
    ]
    await asyncio.gather(*passes)
    assert await birthday_entries(earn, hcm) == [(f"birthday:{hcm}:2026", 100)]
    assert await birthday_entries(earn, new_york) == []

    later = datetime(2026, 12, 10, 6, 0, tzinfo=UTC)  # 01:00 in New York
    await asyncio.gather(
        *(
            award_birthdays(
                transactions(earn.db), ProgrammeBook.fixed(earn.programme), now=later, chunk=2
            )
            for _ in range(2)
        )
    )
    assert await birthday_entries(earn, new_york) == [(f"birthday:{new_york}:2026", 100)]
    assert await birthday_entries(earn, hcm) == [(f"birthday:{hcm}:2026", 100)]

    # 29 February is celebrated on 28 February in 2027.
    await award_birthdays(
        transactions(earn.db),
        ProgrammeBook.fixed(earn.programme),
        now=datetime(2027, 2, 27, 23, tzinfo=UTC),
        chunk=50,
    )
    assert await birthday_entries(earn, leap) == []
    await award_birthdays(
        transactions(earn.db),
        ProgrammeBook.fixed(earn.programme),
        now=datetime(2027, 2, 28, 0, 1, tzinfo=UTC),
        chunk=50,
    )
    assert await birthday_entries(earn, leap) == [(f"birthday:{leap}:2027", 100)]
    due = await earn.db.fetchval(
        "SELECT next_birthday_at FROM earn.customers WHERE customer_id = $1", leap
    )
    assert due == datetime(2028, 2, 29, tzinfo=UTC)


async def birthday_entries(earn: Earn, customer: str) -> list[tuple[str, int]]:
    return [(e[0], e[2]) for e in await earn.entries(customer) if e[1] == "birthday"]
